// The sealed pair (docs/datapath.md, "The sealed pair"): a plain connection joined to a sealed
// data connection (docs/tunnel-protocol.md, "Data connections"). Bytes read from the plain side
// leave on the sealed side as records (type u8 | length u24 BE | ciphertext | 16-byte tag,
// AES-128-GCM, nonce = iv XOR u64 BE sequence, AAD = the 4-byte header); records read from the
// sealed side are opened in place and their plaintext written to the plain side. The pair is a
// stream pair (Kind::PipedClient = plain, Kind::PipedUpstream = sealed) whose StreamConn::sealed
// is set: Pump hands it to SealedPump, and the rest (idle deadline, counters, close, the end
// record) is the plain pair's. Everything runs on the JavaScript thread.
#pragma once

#include "stream.h"

namespace sluice {

// End codes beyond any errno, carried in the end record's errno field (stream-binding.ts maps
// them to ESEALED_AUTH, ESEALED_FORMAT, ESEALED_TRUNCATED).
constexpr int kErrSealedAuth = 100001;
constexpr int kErrSealedFormat = 100002;
constexpr int kErrSealedTruncated = 100003;

constexpr uint8_t kRecData = 1, kRecEnd = 2, kRecHello = 3, kRecKeyUpdate = 4;
constexpr size_t kRecHeader = 4, kRecTag = 16;
constexpr size_t kRecMaxPlain = 1 << 16;
// One record and the next record's header (read ahead with the record's tail).
constexpr size_t kRecBuffer = kRecHeader + kRecMaxPlain + kRecTag + kRecHeader;
// Buffers kept for the next pair: 64 x 64 KiB at most once the pairs that used them ended.
constexpr size_t kSealedPoolMax = 64;

struct SealedPair;

// The keys as streamPipeSealed takes them: seal key 16 | seal iv 12 | open key 16 | open iv 12.
constexpr size_t kSealedKeysLen = 56;

// Makes `client` (plain) and `upstream` (sealed), both held, a sealed pair; 0 or -errno. `first`
// (plaintext already read from the plain side) is sealed first; `pending` (bytes already read from
// the sealed side) are opened first. A failure leaves both held.
int SealedStart(StreamEngine* e, int client, int upstream, const uint8_t* keys, uint64_t seal_seq, uint64_t open_seq, uint32_t idle_ms,
                const uint8_t* first, size_t first_len, const uint8_t* pending, size_t pending_len);
// Moves what can move now in both directions; may end the pair.
void SealedPump(StreamEngine* e, int id);
// The pair's state back to the engine's pool (StreamCloseConn of its plain side).
void SealedFree(StreamEngine* e, StreamConn* c);
// Every pooled buffer freed (engine teardown).
void SealedPoolClear(StreamEngine* e);

// Keep the sealed side after a clean end (END sent and END received): it becomes a held connection
// again and one kept-end record reports the pair (stream-sealed-keep.cc); nothing past the END
// record is read from it. Without it, a clean end closes both sides.
constexpr int kEvEndKept = 5;
void SealedKeep(StreamEngine* e, int plain);
void SealedEndKept(StreamEngine* e, int id, int reason);

// stream-sealed-api.cc: streamPipeSealed and streamSealedLimits (stream-api.cc's table).
napi_value SealedPipeApi(napi_env env, napi_callback_info info);
napi_value SealedLimitsApi(napi_env env, napi_callback_info info);
napi_value RecordCipherApi(napi_env env, napi_callback_info info);

}  // namespace sluice
