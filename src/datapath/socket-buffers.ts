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
 * Per-session connected sockets (a route's socket toward its upstream, the agent's socket toward
 * its local service) receive the service's replies and are read in the same turns, so a loop
 * stall fills them too: with the system default (208 KiB, about 256 datagrams of 64 B at the
 * kernel's 832 bytes of accounting each on loopback) a session replying at 40k/s overflowed after
 * 6 ms, and a paced 40k run through an exposure lost thousands there, after they had been sealed,
 * sent and opened (docs/datapath.md, "Socket buffer sizes"). 512 KiB (1 MiB accounted, capped at
 * net.core.rmem_max) holds about 1,260 datagrams of 64 B, 31 ms at 40k/s, or 455 of 1400 B.
 * Half a listener's: one session's replies are one flow, a listener's queue is every client's.
 * Memory is used only while replies are queued: 10,000 sessions could in theory pin 10 GiB, but
 * the kernel's net.ipv4.udp_mem caps all UDP sockets together (drops beyond it), and a session's
 * replies are bounded by what the send budget lets reach its service. The send side keeps the
 * default: a connected send on loopback is queued at the receiver, not held in the sender.
 */
export const LISTENER_RCVBUF_BYTES = 1024 * 1024;
export const LISTENER_SNDBUF_BYTES = 1024 * 1024;
export const SESSION_RCVBUF_BYTES = 512 * 1024;
