// Relayed connections: a plain connection of the stream engine whose bytes JavaScript carries (the
// end of a multiplexed tunnel stream), without a Node socket. The engine reads it when readable
// (level-triggered; one read of at most kRelayedRead bytes per connection per look at the set, a
// few while each comes back full, so one busy connection cannot starve the rest) into a shared
// data area, and reports records in its usual batches:
//   data:    [21, id, offset in the data area, length]   (valid until the batch's call returns)
//   fin:     [22, id]                                      (the peer's FIN; no more reads)
//   error:   [23, id, errno]                               (reset or failed; reported once)
//   drained: [24, id, bytes]                               (held bytes that left since)
//   idle:    [25, id]                                      (no byte either way for the idle timeout)
// Writes send at once; what the socket does not take is held in the engine and sent when it is
// writable (drained records). JavaScript bounds what it writes (a stream's window), pauses reading
// while it cannot send on, and sends the FIN (shutdown) once nothing is held.
#pragma once

#include "stream.h"

namespace sluice {

constexpr int kEvRelayedData = 21;
constexpr int kEvRelayedFin = 22;
constexpr int kEvRelayedError = 23;
constexpr int kEvRelayedDrained = 24;
constexpr int kEvRelayedIdle = 25;
constexpr size_t kRelayedRead = 1 << 16;
// Reads of one connection per look at the set while each fills kRelayedRead.
constexpr int kRelayedReadsPerLook = 4;

void RelayedDispatch(StreamEngine* e, int id, uint32_t events);
void RelayedTick(StreamEngine* e, int id, uint64_t now);
void RelayedFree(StreamEngine* e, StreamConn* c);
void RegisterStreamRelayed(napi_env env, napi_value exports);

}  // namespace sluice
