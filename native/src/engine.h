// The native UDP datapath engine: sockets in a private epoll set, watched by one uv_poll on the
// main loop; datagrams received in batches (recvmmsg) into memory shared with JavaScript and sent
// in batches (sendmmsg, with UDP_SEGMENT for runs of equal-sized datagrams to one destination).
//
// Threading: everything here runs on the JavaScript thread (the uv_poll callback and the N-API
// calls); there is no lock because there is no second thread.
//
// Shared memory layout (src/datapath/native/layout.ts must agree; `layout()` reports these):
//   rx:  RX slots of kSlotBytes each; datagram i of a batch is at i * kSlotBytes.
//   rxm: Int32 records of kRxRec: [socket id, length or -errno, port, family (0/4/6), addr x4]
//        (family 4: addr[0] is the IPv4 address as a host-order uint32; 6: the 16 raw bytes).
//   tx:  staging bytes written by JavaScript (copies of datagrams that are not in rx, prefixes).
//   txm: Int32 records of kTxRec: [socket id, flags, offset, length, port, family, addr x4,
//        prefix offset, prefix length] (flags bit 0: payload in tx, else in rx).
//   errm: Int32 records of kErrRec: [socket id, errno, datagrams].
#pragma once

#include <node_api.h>
#include "napi-util.h"
#include <uv.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <atomic>
#include <cstdint>
#include <vector>

namespace sluice {

constexpr int kSlotBytes = 65536;
constexpr int kRxRec = 8;
constexpr int kTxRec = 12;
constexpr int kErrRec = 3;
// At most this many datagrams per recvmmsg, and per UDP_SEGMENT send (the kernel's limit was
// 64 before Linux 6.9 raised it to 128).
constexpr int kMaxRecv = 64;
constexpr int kMaxGsoSegments = 64;
// Payload bytes in one UDP_SEGMENT send: under the IPv4 limit of 65507 with room to spare.
constexpr int kMaxGsoBytes = 65000;
// Poll callback rounds before yielding to the loop when every slot keeps filling.
constexpr int kMaxRounds = 8;
// Least receive slots a ready socket gets in one harvest (engine.cc Harvest).
constexpr int kMinShare = 8;
// No bound on what a harvest may read from a socket (engine.cc Harvest, park.cc SoloRoom).
constexpr int kUnbounded = 1 << 30;

struct Sock {
  int fd = -1;
  int family = 0;          // AF_INET or AF_INET6
  bool listener = false;
  int gso_limit = 1 << 30; // UDP_SEGMENT only for segment sizes below this (lowered on EINVAL)
  bool gro = false;        // receives runs as one buffer (UDP_GRO), cut up in the harvest (gro.cc)
  int beside = -1;         // isolate.cc: the listener this socket was bound beside (a client's own), else -1
  // heavy.cc: a source that filled this listener's share read after read, `heavy_after` datagrams
  // of it, is named in a record (0: not watched); the streak's datagrams, its source, how many named.
  int heavy_after = 0;
  int heavy_streak = 0;
  int32_t heavy_src[6] = {};
  uint32_t heavy_noted = 0;
  // park.cc: out of the epoll set until then (CLOCK_MONOTONIC ns; 0: watched), a client's
  // own socket whose session the send budget refused for the rest of its round.
  int64_t parked_until = 0;
  // park.cc: the pooled seal entry last seen forwarding this socket's session (a socket of one
  // session), whose budget bounds how much of it a harvest reads; -1: none.
  int solo = -1;
  // park.cc: while parked, the entry whose budget parked it and the pool's reason (0 agent-budget,
  // 1 session-share); the kernel's drops at this socket when last settled; and those of its
  // drops that happened while parked, counted by the budget's reason instead of isolated-kernel.
  int park_entry = -1;
  int park_reason = 0;
  double park_base = 0;
  double budget_drops = 0;
  // age.cc: parked since a read last found its queue empty (reads drop its stale head); whether
  // the kernel stamps its datagrams (SO_TIMESTAMPNS, kept once set); the entry that parked it.
  bool aged = false;
  bool stamps = false;
  int age_entry = -1;
};

struct SealState;  // seal.cc
struct FwdState;   // forward.cc
struct GroState;   // gro.cc

struct Engine {
  napi_env env = nullptr;
  uv_poll_t poll;
  int epfd = -1;
  bool polling = false;
  bool destroyed = false;
  bool in_batch = false;
  bool gso = false;  // kernel supports UDP_SEGMENT and the user did not turn it off
  int active = 0;    // open sockets
  int owners = 2;    // the JavaScript external and the uv_poll handle (+ the async handle if threaded)

  // Readiness from a native thread instead of uv_poll (docs/datapath.md: measured, not the default).
  // The thread blocks in epoll_wait, wakes the loop through `async`, and waits on `resume` until
  // the loop has drained the set, so receiving itself stays on the JavaScript thread.
  bool threaded = false;
  uv_async_t async;
  uv_thread_t thread;
  uv_sem_t resume;
  int wake_fd = -1;  // an eventfd in the epoll set, written to stop the thread
  std::atomic<bool> stop{false};

  std::vector<Sock> socks;
  std::vector<int> free_ids;     // reusable now
  std::vector<int> pending_ids;  // closed during a batch: reusable once it is over

  uint8_t* rx = nullptr;
  size_t rx_bytes = 0;
  int rx_slots = 0;
  int32_t* rxm = nullptr;
  uint8_t* tx = nullptr;
  size_t tx_bytes = 0;
  int32_t* txm = nullptr;
  int tx_max = 0;
  int32_t* errm = nullptr;
  int err_max = 0;
  int err_count = 0;
  int forwarded = 0;  // records of the last harvest forwarded in the batch (forward.cc)

  napi_ref refs[6] = {};  // rx, rxm, tx, txm, errm, onBatch
  napi_ref on_batch = nullptr;
  napi_async_context actx = nullptr;

  // Scratch for batched calls, sized once from the shared memory.
  std::vector<mmsghdr> rx_hdrs;
  std::vector<iovec> rx_iovs;
  std::vector<sockaddr_in6> rx_names;
  std::vector<mmsghdr> tx_hdrs;
  std::vector<iovec> tx_iovs;
  std::vector<sockaddr_in6> tx_names;
  std::vector<uint64_t> tx_cmsg;   // 4 words (>= CMSG_SPACE(uint16_t)) per message
  std::vector<int> tx_first;       // first record of each message
  std::vector<int> tx_count;       // records (datagrams) in each message
  std::vector<int> tx_segment;     // UDP_SEGMENT size of each message, 0 when none
  std::vector<uint64_t> rx_stamps; // age.cc: kStampWords per receive slot, made on first use

  SealState* seal = nullptr;       // tunnel key slots (seal.cc), made on first use
  FwdState* fwd = nullptr;         // established sessions forwarded in the batch (forward.cc)

  // A bounded receive delay (hold.cc); 0: none.
  int hold_us = 0;
  uint64_t hold_last_ns = 0;  // when the last callback that harvested something ended
  uint64_t holds = 0;         // times the engine slept to let a batch fill
  uint64_t hold_window_ns = 0;  // start of the current rate window
  uint64_t hold_count = 0;      // datagrams harvested in it
  bool hold_dense = false;      // the last window's rate brings >= 2 datagrams per delay
  int hold_ready = 0;           // sockets the last harvest found ready (engine.cc Harvest)
  GroState* gro = nullptr;      // coalesced receives (gro.cc), made when a socket asks for them
  // The adaptive receive delay (hold.cc): engaged only at or above hold_min_rate datagrams/s, and
  // then sleeping about the time hold_batch datagrams take to arrive (at most hold_us); 0: unused.
  int hold_min_rate = 0;
  int hold_batch = 0;
  uint64_t hold_rate = 0;        // datagrams/s harvested over the last closed window
  uint64_t hold_engages = 0;     // times the delay went from off to on (the rate rose)
  uint64_t hold_disengages = 0;  // and back (the rate fell)
  // park.cc: a timerfd in the epoll set (made on first use), armed for the earliest parked
  // socket's end; that end (INT64_MAX: none parked); parks, unparks and readiness callbacks so far.
  int park_fd = -1;
  int64_t park_next = INT64_MAX;
  uint64_t parks = 0;
  uint64_t unparks = 0;
  uint64_t wakeups = 0;
};

// engine.cc
int AllocId(Engine* e);
void ReleaseId(Engine* e, int id);
void Watch(Engine* e);
void OnReadable(uv_poll_t* handle, int status, int events);
void DrainReady(Engine* e);
int Harvest(Engine* e);  // records harvested; `forwarded` of them need no JavaScript

// heavy.cc: records [first, first + r) just read from listener `id` (`room` asked); true when a
// record naming the source that filled its share should follow (PutHeavyRecord at slot `at`).
constexpr int32_t kHeavySourceRecord = -65536;  // rxm length field of that record (src/datapath/native/native-isolated.ts)
bool NoteSources(Engine* e, int id, int first, int r, int room);
void PutHeavyRecord(Engine* e, int id, int at);
napi_value WatchSources(napi_env env, napi_callback_info info);

// park.cc: a client's own socket left unread until its session's budget round ends
// (docs/expose.md, "Excess left in the kernel"). ParkSocket takes socket `id` out of the epoll
// set until the round of its pooled seal entry `entry` ends; ServeParked puts back those whose
// time came (`fired`: the timer's event was seen, its expiry is read); ParkNow is that clock
// (CLOCK_MONOTONIC ns). KernelDrops: the kernel's drops at a socket (SO_MEMINFO), -1 unknown.
constexpr uint32_t kParkTimerId = 0xfffffffeu;  // the timer's epoll data: never a socket id
int64_t ParkNow();
void ParkSocket(Engine* e, int id, int entry);
void ServeParked(Engine* e, bool fired);
// How many datagrams a harvest should read from socket `id` now (`room` asked): all of them
// unless the socket carries one session whose budget allows fewer; 0 when it allows none (the
// socket is then parked until its round ends).
int SoloRoom(Engine* e, int id, int room);
// Whether a seal entry's socket carries that one session only: a client's own socket beside a
// listener (isolate.cc), or a connected socket (the agent's to its local service).
inline bool OneSession(const Sock& s) { return s.beside >= 0 || !s.listener; }
void FreePark(Engine* e);
double KernelDrops(int fd);

// age.cc: a parked socket's queue aged (docs/expose.md, "A backlog outlives its senders").
// AgeQueue: socket `id` was parked for seal entry `entry`; its reads drop what waited in its queue
// longer than kStaleNs until one finds the queue empty. PrepareStamps: control buffers for the
// kernel's timestamps in receive headers [first, first + n). DropStale: of the `r` datagrams just
// received into slots from `used` on, drops the stale prefix (counted for the entry as `stale`)
// and moves the rest down; returns how many are kept.
constexpr int64_t kStaleNs = 50000000;
constexpr int kStampWords = 4;        // >= CMSG_SPACE(struct timespec)
constexpr int kMaxStaleReads = 8;     // reads of one socket per harvest while its head is stale
void AgeQueue(Engine* e, int id, int entry);
void PrepareStamps(Engine* e, mmsghdr* h, int first, int n);
int DropStale(Engine* e, int id, int used, int r);
void RegisterPark(napi_env env, napi_value exports);

// addon.cc
void Teardown(Engine* e);
napi_value Int(napi_env env, int v);

// thread.cc
int StartThread(Engine* e, uv_loop_t* loop);
void StopThread(Engine* e);

// tx.cc
int Flush(Engine* e, int count);
bool ProbeGso();

// seal.cc: tunnel datagrams opened as harvested and sealed as flushed
void OpenHarvested(Engine* e, int used);
void SealStaged(Engine* e, int count);
void FreeSeal(Engine* e);
void UnbindSocket(Engine* e, int sock);
void RegisterSeal(napi_env env, napi_value exports);
int OpenedKey(Engine* e, int rx_index);  // the key slot that opened rx record i (verdict ok), else -1
bool SealSlotLive(Engine* e, int slot);
bool OpenSlotLive(Engine* e, int slot);
// Seals `len` payload bytes in place under sealing slot `slot`, `header` as associated data (its
// sequence is the nonce's), the tag into `tag`.
bool SealParts(Engine* e, int slot, const uint8_t* header, uint8_t* payload, int len, uint8_t* tag);

// forward.cc: established sessions forwarded as harvested (after opening)
int ForwardHarvested(Engine* e, int used);
void ForgetForwards(Engine* e, int sock, int slot);  // entries using this socket or key slot (-1: none)
void FreeForwards(Engine* e);
void RegisterForward(napi_env env, napi_value exports);

// tx.cc: the UDP_SEGMENT control message of a GSO send of `size`-byte segments (`space`: 4 words);
// errors of a GSO send that mean "not this way" (send the datagrams one by one instead).
void PutSegment(msghdr* h, uint64_t* space, int size);
bool GsoRetryable(int err);

// tx.cc: a destination [port, family, address x4] as a socket address for `s`; false when `s`
// cannot reach that family.
bool DestinationOf(const Sock& s, const int32_t* dst, sockaddr_in6* name, socklen_t* len);

// hold.cc: a bounded receive delay around each readiness callback.
uint64_t HoldStart(Engine* e);
void HoldAfter(Engine* e, uint64_t started, int harvested, bool full);
void RegisterHold(napi_env env, napi_value exports);

// gro.cc: coalesced receives. PrepareCoalesced gives messages [first, first + room) of the
// receive headers room for the segment size; SplitCoalesced cuts the r buffers received at slot
// `used` into one record per datagram and returns the records now in the slots, at most `limit`
// (the rest wait in the carry); DrainCarry moves at most `max` waiting datagrams into the slots
// from `first` and returns how many.
void PrepareCoalesced(Engine* e, mmsghdr* h, int first, int room);
int SplitCoalesced(Engine* e, int used, int r, int limit);
bool CarryPending(Engine* e);
int DrainCarry(Engine* e, int first, int max);
void ForgetCarried(Engine* e, int sock);
void FreeGro(Engine* e);
void RegisterGro(napi_env env, napi_value exports);

// sockopt.cc: buffer sizes of a socket in the engine.
void RegisterSockopt(napi_env env, napi_value exports);
// isolate.cc: a socket of its own for one client of a listener, and a socket's kernel drops.
void RegisterIsolate(napi_env env, napi_value exports);
void RegisterHeapMemory(napi_env env, napi_value exports);  // heap-memory.cc
void RegisterSchedSlice(napi_env env, napi_value exports);  // sched-slice.cc

// errors.cc
napi_value ErrnoError(napi_env env, int err, const char* syscall, const char* detail);
const char* ErrnoName(int err);

}  // namespace sluice
