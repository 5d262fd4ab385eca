// The trunk (docs/tunnel-protocol.md, "Trunks"; docs/datapath.md): one sealed data connection that
// carries many plain streams at once. Each direction of the trunk is a sequence of sealed records
// exactly as on a data connection (stream-sealed.h: u8 type | u24 BE length | ciphertext | tag,
// AES-128-GCM, KEY_UPDATE), whose type is kRecTrunk and whose plaintext is one frame:
//
//   u32 BE stream | u8 kind | body      kind: 1 DATA (1..65531 bytes), 2 END (empty),
//                                             3 RESET (empty), 4 CREDIT (u32 BE increment),
//                                             5 READY (empty)
//
// A plain connection attached as stream S (streamTrunkAttach) is a Kind::TrunkPlain connection:
// what it reads leaves as DATA frames while S has credit, what arrives for S is written to it.
// Flow control per stream: a sender may have at most kTrunkWindow bytes of DATA not yet granted
// back by CREDIT; the receiver grants what it wrote to its plain side. So a slow reader stalls only
// its own stream, and the receiver never buffers more than one window per stream. Frames of all
// streams are appended to one output buffer, written as soon as kTrunkChunk bytes wait and
// otherwise once at the end of the engine pass; the trunk stops reading plain sides while that
// buffer holds kTrunkOutCap bytes.
//
// Events: a stream's end is the pairs' end record [4, plain id, reason, errno, from plain, to
// plain] (upstream-* when the trunk side ended first or failed); the trunk's own end (a FIN, a
// reset, a record that fails, a format or flow-control error) is [6, trunk id, reason, errno],
// after the end records of its streams (upstream-error with the trunk's code).
//
// READY proves the trunk alive for one stream: the agent's end writes it before anything else of
// a stream it attaches (a new stream id); the gateway's end reports it for an expected stream as
// [7, trunk id, stream id] and attaches the public client only after it (a trunk whose NAT mapping
// died never delivers it, and the client, still unread, goes elsewhere).
#pragma once

#include "stream.h"

namespace sluice {

constexpr int kEvTrunkEnd = 6;
constexpr int kEvTrunkReady = 7;
constexpr uint8_t kRecTrunk = 6;
constexpr uint8_t kFrameData = 1, kFrameEnd = 2, kFrameReset = 3, kFrameCredit = 4, kFrameReady = 5;
constexpr size_t kFrameHeader = 5;
// The credit window per stream and direction.
constexpr uint64_t kTrunkWindow = 256 * 1024;
// Plaintext read from a plain side per DATA frame (one read, one record). Counted per GB of one
// stream (docs/benchmarks.md, "Exposed TCP per byte, round 11"): 48 KiB 5 % less relay CPU than
// 32 KiB, 8 streams the same; 64 KiB 30 % more, 16 KiB 8 % more. The receiver takes up to 65531,
// so this size is the sender's alone.
constexpr size_t kTrunkChunk = 48 * 1024;
// Sealed bytes waiting for the trunk socket beyond which plain sides are not read.
constexpr size_t kTrunkOutCap = 256 * 1024;
// The trunk's read buffer: many records per read, at least one whole record.
constexpr size_t kTrunkIn = 256 * 1024;
// Streams expected or attached on one trunk at most (a peer's frames name only those).
constexpr size_t kTrunkMaxStreams = 65536;

struct Trunk;
struct TrunkStream;

// Makes held connection `conn` a trunk; keys as streamPipeSealed's; `pending` (bytes already read
// after the hello) is opened first. 0 or -errno; a failure leaves `conn` held.
int TrunkStart(StreamEngine* e, int conn, const uint8_t* keys, uint64_t seal_seq, uint64_t open_seq, const uint8_t* pending, size_t pending_len);
// Stream `sid` will be attached (the gateway, before STREAM_OPEN): its frames are kept until then.
int TrunkExpect(StreamEngine* e, int trunk, uint32_t sid);
// Attaches held connection `plain` as stream `sid` (`expected`: one TrunkExpect made, else a new
// one); `first` (plaintext already read from `plain`) leaves first. 0 or -errno (ENOTCONN: the
// trunk is gone; `plain` stays held, nothing read from it).
int TrunkAttach(StreamEngine* e, int trunk, uint32_t sid, int plain, uint32_t idle_ms, bool expected, const uint8_t* first, size_t first_len);
// Forgets stream `sid` (expected or attached) and sends RESET for it; 0 or -ENOENT.
int TrunkDrop(StreamEngine* e, int trunk, uint32_t sid);
// Fails the trunk as a reset would: its streams end (upstream-error, `err`), then the trunk.
void TrunkFail(StreamEngine* e, int trunk, int err);
// Readiness of a TrunkConn or TrunkPlain connection (already noted in its ready bits).
void TrunkOnEvent(StreamEngine* e, int id);
// From StreamCloseConn: a plain side closed by JavaScript resets its stream; a trunk closed frees
// its state quietly (its streams' plain sides stay open, unattached).
void TrunkOnClose(StreamEngine* e, int id);
// Writes what every trunk touched in this pass has waiting (the end of a wake-up or a call).
void TrunkFlushDirty(StreamEngine* e);
// An attached stream whose idle deadline passed: RESET to the peer, the plain side closed.
void TrunkIdle(StreamEngine* e, int plain);
// N-API: streamTrunkStart, streamTrunkExpect, streamTrunkAttach, streamTrunkDrop, streamTrunkStats.
void RegisterStreamTrunk(napi_env env, napi_value exports);

}  // namespace sluice
