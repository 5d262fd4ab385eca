/**
 * Kernel buffer sizes of listener sockets (route listeners, the gateway's public listeners and
 * its tunnel port, the agent's tunnel socket), on both datapaths (docs/expose.md, "Fairness
 * under a flood").
 *
 * Receive: a UDP socket is read once per turn of the event loop, and a turn can take tens of
 * milliseconds (a GC pause, a burst of new sessions, a CPU the process shares). The default
 * (net.core.rmem_default, about 208 KiB) holds only about 200-400 small datagrams: at 40k
 * datagrams/s that is 5-10 ms of traffic, so every client loses datagrams in the kernel whenever
 * the loop stalls, before any fairness can act. 1 MiB (the kernel doubles it for its bookkeeping,
 * and caps the request at net.core.rmem_max: raise that sysctl to get it) holds a few thousand,
 * about 50 ms at that rate; the cost is memory only while datagrams are actually queued. Not
 * more: when the process is really too slow for what arrives, everything queued waits its turn,
 * and 4 MiB measured a median delay of 1.1 s for a second client under a flood (docs/expose.md).
 *
 * Send: 1 MiB (capped at net.core.wmem_max), so a batch of replies flushed at once (sendmmsg of
 * hundreds of datagrams) does not fail with ENOBUFS/EAGAIN halfway.
 *
 * Per-session connected sockets keep the system default: thousands of them each allowed 1 MiB
 * would let a flood of replies pin that much kernel memory, and what reaches them is already
 * bounded by the send budget.
 */
export const LISTENER_RCVBUF_BYTES = 1024 * 1024;
export const LISTENER_SNDBUF_BYTES = 1024 * 1024;
