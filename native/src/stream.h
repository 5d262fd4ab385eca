// The native TCP stream datapath (docs/datapath.md, "The TCP stream datapath"): listeners,
// accepted and dialed connections in a private epoll set of their own, watched by one uv_poll on
// the main loop, like the UDP engine's. TypeScript decides (admission, PROXY headers, where to
// dial); this engine accepts in batches, dials, and moves the bytes of an established pair with
// splice(2) through one pipe per direction, so bulk payload never enters user space (small reads
// are copied through one engine buffer instead: cheaper for a few bytes, see kCopyChunk).
//
// Threading: everything runs on the JavaScript thread (uv_poll and uv_timer callbacks, N-API calls).
//
// Events reach JavaScript in batches through a shared Float64Array of kEvRec doubles per record:
//   accept:    [1, listener id, conn id, peer family (4/6), peer port, peer addr x4,
//               local family, local port, local addr x4]   (IPv4 addr[0] host-order; IPv6 4 x uint32 BE words)
//   readable:  [2, conn id]                       (a watched, not yet piped connection; one-shot)
//   connected: [3, conn id, 0 or errno]           (a dial finished; ETIMEDOUT when the deadline passed)
//   end:       [4, client id, reason, errno, bytes from client, bytes to client]
#pragma once

#include "sealed-record.h"

#include <node_api.h>
#include <uv.h>
#include <sys/socket.h>
#include <cstdint>
#include <unordered_map>
#include <vector>

namespace sluice {

constexpr int kEvRec = 16;
constexpr int kEvAccept = 1;
constexpr int kEvReadable = 2;
constexpr int kEvConnected = 3;
constexpr int kEvEnd = 4;

// End reasons (src/datapath/native/stream-binding.ts maps them to EndReason).
constexpr int kEndClientClosed = 1;
constexpr int kEndUpstreamClosed = 2;
constexpr int kEndIdle = 3;
constexpr int kEndClientError = 4;
constexpr int kEndUpstreamError = 5;

// Connections accepted per listener per readiness round: a flood cannot starve the pairs.
constexpr int kAcceptBatch = 128;
// Bytes asked for per splice read. A read moves at most what the pipe holds and takes place only
// into an empty pipe, so a slow reader leaves data in the kernel's socket buffers and TCP's window
// closes. 128 KiB (half a big pipe) halves the reads and the splices out of the pipe against
// 64 KiB (docs/datapath.md, "Bulk: where a GB goes"); asking for the whole 256 KiB
// saved a little more CPU per GB but let the receive window of a stalled pair autotune up to
// tcp_rmem's maximum, so the sender could push up to 4 times as much into the kernel's buffers.
constexpr size_t kSpliceChunk = 1 << 17;
// Empty pipes kept for reuse: a direction takes one only while bytes are in flight.
constexpr size_t kPipePool = 128;

// Readiness of a pair's sockets as the last events said; a splice is tried only on a side that
// is ready, and one that would block clears its bit until the next edge sets it again.
constexpr uint8_t kReadyInClient = 1, kReadyOutClient = 2, kReadyInUpstream = 4, kReadyOutUpstream = 8;
// Sticky: that side's FIN, RST or error has been reported, so a short read no longer means drained.
constexpr uint8_t kEndSeenClient = 16, kEndSeenUpstream = 32;
// Pipes are asked for this size: 64 page slots, so a read shorter than 64 bytes cannot have
// stopped on a full pipe and proves the socket drained (StreamPump, stream-pump.cc). At most
// kBigPipes of them at a time, so the pages they are charged for stay far below
// fs.pipe-user-pages-soft (16384 by default; an unprivileged user over it gets 2-slot pipes
// everywhere); others keep the default 16 slots. Where the kernel refuses, a pipe keeps its size and its slots are what it has.
constexpr int kPipeBytes = 256 * 1024;
constexpr int kBigPipes = 128;
// Reads of a direction that has not read in bulk, or has read small for a while, go through user
// space (recv into the engine's buffer, send to the other side) instead of two splices: for a few
// bytes, a copy costs the kernel less than moving pipe buffers. A read that fills the buffer
// switches the direction to splice (bulk stays zero-copy); kSmallReadsToCopy splices in a row that
// move less switch it back. One page, so what a send leaves behind always fits an empty pipe in
// one write (PIPE_BUF).
constexpr size_t kCopyChunk = 4096;
// TCP_CONGESTION names: TCP_CA_NAME_MAX (16) with the terminating NUL.
constexpr size_t kCongestionName = 16;
// Small splice reads in a row before a bulk direction goes back to copying. Under several bulk
// streams a wake-up often finds only a few KiB on one socket: one small read is the tail of a
// burst, not a small-message connection, and switching on it cost a 4 KiB recv/send (a small
// segment to the destination) and two epoll_ctl (the source's EPOLLOUT, see SetInterest) per
// switch, back and forth (docs/datapath.md, "Several bulk streams").
constexpr uint8_t kSmallReadsToCopy = 4;
// Looks at the set per wake-up while the previous look's delivery started dials or pairs: a
// loopback dial has finished by the time connect() returns, and a new pair's client usually has
// its first bytes waiting, so accept, dial, join and the first bytes take one wake-up, not three.
constexpr int kSetupPasses = 4;

// TrunkConn, TrunkPlain: a trunk and a plain connection attached to one (stream-trunk.h).
// Relayed: a connection whose bytes JavaScript relays (stream-relayed.h).
enum class Kind : uint8_t { Free, Listener, Held, Dialing, PipedClient, PipedUpstream, TrunkConn, TrunkPlain, Relayed };

struct StreamConn {
  int fd = -1;
  Kind kind = Kind::Free;
  bool paused = false;      // a listener whose accept hit EMFILE: re-armed at the next tick
  bool in_set = false;      // registered in the epoll set (close() alone removes it: the engine never dups an fd)
  bool watched = false;     // held: one `readable` event asked for (streamWatch)
  bool edge = false;        // registered edge-triggered for IN|OUT|RDHUP (a dial, a pair)
  // Piped side whose direction waits on a blocked destination with its pipe full: EPOLLIN is left
  // out of its interest until the pipe drains (stream-pump.cc: StreamPump, SetInterest).
  bool in_off = false;
  // Piped side that a bulk direction reads and whose writes never blocked: EPOLLOUT is left out of
  // its interest (out_off) until a write to it would block; from then on it stays (out_kept).
  bool out_off = false;
  bool out_kept = false;
  uint8_t ready = 0;        // piped client: kReady* bits, which sides may not block; a dialed held one: its own edges (kReady*Client)
  int other = -1;           // piped: the partner's id
  uint64_t deadline = 0;    // dialing: connect deadline; piped client: idle deadline (uv_now ms)
  uint32_t idle_ms = 0;
  // Piped client only; direction 0 is client -> upstream, 1 is upstream -> client.
  int pipe_r[2] = {-1, -1};
  int pipe_w[2] = {-1, -1};
  uint32_t in_pipe[2] = {0, 0};
  bool eof[2] = {false, false};
  bool shut[2] = {false, false};
  int first_eof = -1;
  double bytes_from_client = 0;
  double bytes_to_client = 0;
  uint32_t pipe_slots[2] = {0, 0};  // page slots of each direction's pipe
  bool spliced[2] = {false, false};  // the direction reads with splice (a large read; kCopyChunk)
  uint8_t small_reads[2] = {0, 0};   // spliced: small reads in a row since the last large one (kSmallReadsToCopy)
  struct SealedPair* sealed = nullptr;  // piped client of a sealed pair: its records' state (stream-sealed.h)
  // Joined at connect (stream-join.cc): on a dialing upstream, the held client it is joined to
  // when its dial succeeds; on that client, the dial (so closing either one unlinks both).
  int join = -1;
  uint32_t join_idle_ms = 0;  // dialing upstream: the pair's idle timeout
  struct Trunk* trunk = nullptr;          // TrunkConn: its frames and streams (stream-trunk.h)
  struct TrunkStream* tstream = nullptr;  // TrunkPlain: the stream it is attached as
  struct RelayedConn* relayed = nullptr;  // Kind::Relayed: its held bytes and state (stream-relayed.h)
};

struct StreamEngine {
  napi_env env = nullptr;
  uv_loop_t* loop = nullptr;
  uv_poll_t poll;
  uv_timer_t timer;
  int epfd = -1;
  bool polling = false;
  bool timing = false;
  bool destroyed = false;
  bool in_batch = false;
  int active = 0;       // listeners and connections in the set
  int timed = 0;        // dialing or idle-timed pairs
  uint64_t tick_ms = 250;
  int owners = 3;       // the JavaScript external, the poll handle, the timer handle

  std::vector<StreamConn> conns;
  std::vector<int> free_ids;
  std::vector<int> pending_ids;  // released during a batch: reusable once it is delivered
  std::vector<int> pipe_pool;    // empty pipes (read end, write end, page slots) kept for the next pair
  int big_pipes = 0;             // open pipes enlarged to kPipeBytes
  // Listeners bound to one address: an accepted connection's local address is theirs (no getsockname).
  std::unordered_map<int, sockaddr_storage> bound;
  // The congestion control of later listeners and dials (stream-congestion.cc): `cc_all` for
  // every one, else `cc_local` for those whose peer is on this host; "" = the kernel's default.
  char cc_local[kCongestionName] = "";
  char cc_all[kCongestionName] = "";

  double* ev = nullptr;
  int ev_max = 0;
  int ev_count = 0;
  napi_ref ev_ref = nullptr;
  napi_ref on_events = nullptr;
  napi_async_context actx = nullptr;
  char copy_buf[kCopyChunk];  // small reads pass through here (kCopyChunk); never holds bytes between calls
  // A dial or a pair was started since the last look at the set (StreamOnReadable): the wake-up
  // that delivered the batch looks again before returning to the loop.
  bool setup_started = false;
  // While a look at the set is dispatched and its batch delivered, the descriptors of connections
  // that end are kept here and closed after the delivery (CloseEnded in stream.cc): teardown waits
  // behind the bytes and dials of the connections still in flight.
  bool close_later = false;
  std::vector<int> closing;
  // Sealed pairs (stream-sealed.h): record buffers kept for the next pair, and the key update
  // limits (records and plaintext bytes under one key; lowered by streamSealedLimits, for tests).
  std::vector<uint8_t*> sealed_pool;
  uint64_t sealed_max_records = uint64_t(1) << 24;
  uint64_t sealed_max_bytes = uint64_t(1) << 36;
  RecordCiphers ciphers;               // AES-128-GCM: ipsec-mb or OpenSSL, and contexts kept for the next pair (sealed-record.h)
  std::vector<int> trunk_dirty;        // trunks with frames to write at the end of this pass (stream-trunk.h)
  // Relayed connections (stream-relayed.h): the data area their reads land in (JavaScript's memory).
  uint8_t* relayed_data = nullptr;
  size_t relayed_cap = 0;
  size_t relayed_off = 0;
  // Wake-up moderation (stream-moderate.cc): bytes read by piped pairs, and the rule's state.
  uint64_t read_bytes = 0;
  struct Moderation {
    int bound_us = 200;                 // 0: off
    uint64_t min_rate = 300000000;      // bytes/s at which it engages (3/4 of it to disengage)
    uint64_t batch = 512 * 1024;        // bytes a wait lets arrive at the window's rate
    uint64_t window_ns = 0;     // start of the current rate window
    uint64_t window_bytes = 0;  // bytes read in it
    uint64_t last_ns = 0;       // when the last wake-up ended
    uint64_t rate = 0;          // the last window's rate, bytes/s
    bool on = false;
    uint64_t waits = 0, engages = 0, disengages = 0;
  } mod;
};

// stream-api.cc
void RegisterStream(napi_env env, napi_value exports);
// stream-moderate.cc
void RegisterStreamModerate(napi_env env, napi_value exports);

}  // namespace sluice
