// A source that keeps a listener's shared queue full (docs/expose.md, "A flooding client's own
// socket", "Noticed in the batch"): the isolation's sweep decides by rate every 250 ms, and until
// then a flood fills the queue every client of the listener shares, so the kernel drops the
// others' datagrams as often as the flood's and delays the rest by a full queue. The harvest
// already reads each socket's share; here, for a listener that asks for it (watchSources), it
// notes whether one source filled that share (at least 3/4 of its records) read after read. When
// such reads in a row carried `datagrams` of that source (watchSources), the harvest adds one
// record naming it (rxm: [listener id, kHeavySourceRecord, port, family, addr x4], no slot data), and JavaScript decides (the same
// isolation as the sweep's). One pass over the records just read, no allocation, nothing per
// datagram beyond a 24-byte compare.
#include "engine.h"

#include <string.h>

namespace sluice {

Engine* LiveEngine(napi_env env, napi_value v);  // forward-api.cc

namespace {

constexpr size_t kSrcBytes = 6 * sizeof(int32_t);  // port, family, addr x4 of a record

inline const int32_t* Src(const Engine* e, int i) { return e->rxm + i * kRxRec + 2; }

}  // namespace

bool NoteSources(Engine* e, int id, int first, int r, int room) {
  Sock& s = e->socks[id];
  if (s.heavy_after <= 0) return false;
  if (r < room || r < kMinShare) {
    s.heavy_streak = 0;
    return false;
  }
  // The majority source of the read (Boyer-Moore vote), then how many records it has.
  int lead = first, votes = 0;
  for (int j = first; j < first + r; j++) {
    if (votes == 0) {
      lead = j;
      votes = 1;
    } else {
      votes += memcmp(Src(e, j), Src(e, lead), kSrcBytes) == 0 ? 1 : -1;
    }
  }
  int same = 0;
  for (int j = first; j < first + r; j++) same += memcmp(Src(e, j), Src(e, lead), kSrcBytes) == 0;
  if (same * 4 < r * 3 || e->rxm[lead * kRxRec + 1] < 0) {
    s.heavy_streak = 0;
    return false;
  }
  if (s.heavy_streak > 0 && memcmp(s.heavy_src, Src(e, lead), kSrcBytes) != 0) s.heavy_streak = 0;
  memcpy(s.heavy_src, Src(e, lead), kSrcBytes);
  s.heavy_streak += same;
  if (s.heavy_streak < s.heavy_after) return false;
  s.heavy_streak = 0;
  s.heavy_noted++;
  return true;
}

void PutHeavyRecord(Engine* e, int id, int at) {
  int32_t* rec = e->rxm + at * kRxRec;
  rec[0] = id;
  rec[1] = kHeavySourceRecord;
  memcpy(rec + 2, e->socks[id].heavy_src, kSrcBytes);
}

// watchSources(engine, id, datagrams) -> sources noted so far at listener `id`: from now on a
// source that fills the listener's share read after read until they carried `datagrams` of it is
// named in a record (0: off; -1: only asks).
napi_value WatchSources(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!Args(env, info, 3, argv)) return nullptr;
  Engine* e = LiveEngine(env, argv[0]);
  int32_t id = -1, datagrams = 0;
  napi_get_value_int32(env, argv[1], &id);
  napi_get_value_int32(env, argv[2], &datagrams);
  double noted = -1;
  if (e != nullptr && id >= 0 && id < static_cast<int>(e->socks.size()) && e->socks[id].fd >= 0 && e->socks[id].listener) {
    Sock& s = e->socks[id];
    if (datagrams >= 0) {
      s.heavy_after = datagrams;
      s.heavy_streak = 0;
    }
    noted = static_cast<double>(s.heavy_noted);
  }
  napi_value out;
  napi_create_double(env, noted, &out);
  return out;
}

}  // namespace sluice
