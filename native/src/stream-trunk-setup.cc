// The trunk's set-up and tear-down calls (stream-trunk.h): start, expect, attach, drop, stats, and
// the close hook; the frames themselves are stream-trunk.cc's.
#include "stream-trunk-internal.h"
#include "stream-internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include <algorithm>

namespace sluice {

using namespace trunk_detail;

void TrunkOnClose(StreamEngine* e, int id) {
  StreamConn& c = e->conns[id];
  if (c.kind == Kind::TrunkPlain && c.tstream != nullptr) {
    TrunkStream* ts = c.tstream;
    if (Trunk* t = LiveTrunk(e, ts->trunk)) {
      t->streams.erase(ts->sid);
      if (!ts->plain_eof || !ts->end_recv) AppendFrame(e, ts->trunk, t, ts->sid, kFrameReset, nullptr, 0);
    }
    c.tstream = nullptr;
    delete ts;
    return;
  }
  if (c.kind != Kind::TrunkConn || c.trunk == nullptr) return;
  Trunk* t = c.trunk;
  c.trunk = nullptr;
  // Streams still attached keep their plain sides (closed by whoever closes them), unattached.
  for (auto& kv : t->streams) {
    if (kv.second->plain >= 0) e->conns[kv.second->plain].tstream = nullptr;
    delete kv.second;
  }
  t->streams.clear();
  t->dead = t->closed = true;
  auto at = std::find(e->trunk_dirty.begin(), e->trunk_dirty.end(), id);
  if (at != e->trunk_dirty.end()) e->trunk_dirty.erase(at);
  if (t->busy == 0) FreeTrunk(e, t);
}

int TrunkStart(StreamEngine* e, int conn, const uint8_t* keys, uint64_t seal_seq, uint64_t open_seq, const uint8_t* pending, size_t pending_len) {
  if (pending_len > kTrunkIn) return -EINVAL;
  Trunk* t = new Trunk();
  SealDir* dirs[2] = {&t->seal, &t->open};
  for (int d = 0; d < 2; d++) {
    memcpy(dirs[d]->key, keys + 28 * d, 16);
    memcpy(dirs[d]->iv, keys + 28 * d + 16, 12);
    dirs[d]->seq = d == 0 ? seal_seq : open_seq;
  }
  t->in = static_cast<uint8_t*>(malloc(kTrunkIn));
  int err = 0;
  if (t->in == nullptr) err = -ENOMEM;
  else if (!KeyDir(t->seal, e->ciphers, 1) || !KeyDir(t->open, e->ciphers, 0)) err = -ENOTSUP;
  else if (StreamCtlEdge(e, conn) < 0 || StreamCtl(e, conn, EPOLL_CTL_MOD, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET) < 0) err = -errno;
  if (err < 0) {
    FreeTrunk(e, t);
    return err;
  }
  if (pending_len > 0) memcpy(t->in, pending, pending_len);
  t->in_have = pending_len;
  StreamConn& c = e->conns[conn];
  c.kind = Kind::TrunkConn;
  c.trunk = t;
  c.watched = false;
  // Unknown counts as ready: the re-arm above reports the socket's state at the next wake-up.
  c.ready = kReadyInClient | kReadyOutClient | (c.ready & kEndSeenClient);
  e->setup_started = true;
  StreamWatch(e);
  if (pending_len > 0) {
    t->busy++;
    ParseRecords(e, conn, t);
    if (--t->busy == 0 && t->closed) FreeTrunk(e, t);
  }
  return 0;
}

int TrunkExpect(StreamEngine* e, int tid, uint32_t sid) {
  Trunk* t = LiveTrunk(e, tid);
  if (t == nullptr) return -ENOTCONN;
  if (t->streams.count(sid) > 0) return -EEXIST;
  if (t->streams.size() >= kTrunkMaxStreams) return -ENOSPC;
  TrunkStream* ts = new TrunkStream();
  ts->sid = sid;
  ts->trunk = tid;
  t->streams.emplace(sid, ts);
  return 0;
}

int TrunkAttach(StreamEngine* e, int tid, uint32_t sid, int plain, uint32_t idle_ms, bool expected, const uint8_t* first, size_t first_len) {
  Trunk* t = LiveTrunk(e, tid);
  if (t == nullptr) return -ENOTCONN;
  if (first_len > kTrunkWindow) return -EINVAL;
  auto it = t->streams.find(sid);
  TrunkStream* ts;
  if (expected) {
    if (it == t->streams.end() || it->second->plain >= 0) return -ENOENT;
    ts = it->second;
  } else {
    if (it != t->streams.end()) return -EEXIST;
    if (t->streams.size() >= kTrunkMaxStreams) return -ENOSPC;
    ts = nullptr;
  }
  // Edge-triggered; re-armed so epoll reports the socket's state once at the next wake-up.
  StreamConn& pc = e->conns[plain];
  const uint8_t end_seen = pc.edge ? (pc.ready & kEndSeenClient) : 0;
  if (StreamCtlEdge(e, plain) < 0 || StreamCtl(e, plain, EPOLL_CTL_MOD, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET) < 0) return -errno;
  if (ts == nullptr) {
    ts = new TrunkStream();
    ts->sid = sid;
    ts->trunk = tid;
    t->streams.emplace(sid, ts);
  }
  StreamConn& c = e->conns[plain];
  c.kind = Kind::TrunkPlain;
  c.tstream = ts;
  c.watched = false;
  c.ready = kReadyInClient | kReadyOutClient | end_seen;
  ts->plain = plain;
  // A new stream (the agent's end): READY first, the liveness proof the gateway waits for.
  if (!expected && !AppendFrame(e, tid, t, sid, kFrameReady, nullptr, 0)) t->dead = true;  // failed at the next flush
  if (first_len > 0) {
    for (size_t off = 0; off < first_len; off += kTrunkChunk) {
      const size_t n = std::min(kTrunkChunk, first_len - off);
      if (!AppendFrame(e, tid, t, sid, kFrameData, first + off, n)) t->dead = true;  // failed at the next flush
    }
    ts->credit -= first_len;
    c.bytes_from_client += static_cast<double>(first_len);
  }
  c.idle_ms = idle_ms;
  if (idle_ms > 0) {
    c.deadline = uv_now(e->loop) + idle_ms;
    e->timed++;
    StreamNoteTimeout(e, idle_ms);
  }
  e->setup_started = true;
  StreamWatch(e);
  return 0;
}

int TrunkDrop(StreamEngine* e, int tid, uint32_t sid) {
  Trunk* t = LiveTrunk(e, tid);
  if (t == nullptr) return -ENOTCONN;
  auto it = t->streams.find(sid);
  if (it == t->streams.end()) return -ENOENT;
  TrunkStream* ts = it->second;
  if (ts->plain >= 0) {
    EndStream(e, ts->plain, kEndClientError, ECONNABORTED, true, true);
    return 0;
  }
  t->streams.erase(it);
  delete ts;
  if (!AppendFrame(e, tid, t, sid, kFrameReset, nullptr, 0)) t->dead = true;
  return 0;
}

// [streams, bytes received and not yet written to plain sides, sealed bytes waiting to be written,
//  frames sealed and opened so far]
void TrunkStats(StreamEngine* e, int tid, double* out) {
  out[0] = out[1] = out[2] = out[3] = -1;
  Trunk* t = LiveTrunk(e, tid);
  if (t == nullptr) return;
  double rx = 0;
  for (auto& kv : t->streams) rx += static_cast<double>(kv.second->rx.size() - kv.second->rx_off);
  out[0] = static_cast<double>(t->streams.size());
  out[1] = rx;
  out[2] = static_cast<double>(Pending(t));
  out[3] = static_cast<double>(t->frames);
}

}  // namespace sluice
