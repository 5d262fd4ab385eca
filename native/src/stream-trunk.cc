// The trunk's engine side (stream-trunk.h): frames in and out, credit, ends (set-up and tear-down are
// stream-trunk-setup.cc's). The record crypto is
// sealed-record.cc's (the same as a sealed pair's). Everything runs on the JavaScript thread.
#include "stream-trunk.h"
#include "stream-internal.h"
#include "stream-sealed.h"
#include "sealed-record.h"
#include "stream-trunk-internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <unordered_map>
#include <vector>

namespace sluice {

namespace trunk_detail {

inline bool WouldBlock(int err) { return err == EAGAIN || err == EWOULDBLOCK; }

inline uint32_t Be32(const uint8_t* p) { return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | p[3]; }
inline void PutBe32(uint8_t* p, uint32_t v) {
  p[0] = uint8_t(v >> 24);
  p[1] = uint8_t(v >> 16);
  p[2] = uint8_t(v >> 8);
  p[3] = uint8_t(v);
}

Trunk* LiveTrunk(StreamEngine* e, int id) {
  if (id < 0 || id >= static_cast<int>(e->conns.size())) return nullptr;
  StreamConn& c = e->conns[id];
  return c.kind == Kind::TrunkConn && c.trunk != nullptr && !c.trunk->dead ? c.trunk : nullptr;
}

size_t Pending(const Trunk* t) { return t->out_len - t->out_off; }

bool Reserve(Trunk* t, size_t n) {
  if (t->out_off == t->out_len) t->out_off = t->out_len = 0;
  if (t->out_len + n <= t->out_cap) return true;
  if (t->out_off > 0) {
    memmove(t->out, t->out + t->out_off, t->out_len - t->out_off);
    t->out_len -= t->out_off;
    t->out_off = 0;
    if (t->out_len + n <= t->out_cap) return true;
  }
  size_t cap = std::max({t->out_cap * 2, t->out_len + n, size_t(64 * 1024)});
  void* p = realloc(t->out, cap);
  if (p == nullptr) return false;
  t->out = static_cast<uint8_t*>(p);
  t->out_cap = cap;
  return true;
}

void MarkDirty(StreamEngine* e, int tid, Trunk* t) {
  if (t->dirty) return;
  t->dirty = true;
  e->trunk_dirty.push_back(tid);
}

// KEY_UPDATE before a record could pass a limit under this key (as a sealed pair's sealer).
bool MaybeRekey(StreamEngine* e, Trunk* t) {
  SealDir& s = t->seal;
  if (s.records == 0 || (s.records + 2 <= e->sealed_max_records && s.bytes + kRecMaxPlain <= e->sealed_max_bytes)) return true;
  if (!Reserve(t, kRecHeader + kRecTag)) return false;
  if (!SealRecord(s, kRecKeyUpdate, t->out + t->out_len, 0) || !NextKey(s, 1)) return false;
  t->out_len += kRecHeader + kRecTag;
  return true;
}

// Seals one frame whose `n` body bytes are already at rec + 9 (rec = t->out + t->out_len, reserved).
bool SealFrame(StreamEngine* e, int tid, Trunk* t, uint32_t sid, uint8_t kind, size_t n) {
  uint8_t* rec = t->out + t->out_len;
  PutBe32(rec + kRecHeader, sid);
  rec[kRecHeader + 4] = kind;
  if (!SealRecord(t->seal, kRecTrunk, rec, kFrameHeader + n)) return false;
  t->out_len += kRecHeader + kFrameHeader + n + kRecTag;
  t->frames++;
  MarkDirty(e, tid, t);
  return true;
}

bool AppendFrame(StreamEngine* e, int tid, Trunk* t, uint32_t sid, uint8_t kind, const uint8_t* body, size_t n) {
  if (!MaybeRekey(e, t) || !Reserve(t, kRecHeader + kFrameHeader + n + kRecTag)) return false;
  if (n > 0) memcpy(t->out + t->out_len + kRecHeader + kFrameHeader, body, n);
  return SealFrame(e, tid, t, sid, kind, n);
}

// Ends attached stream `plain` with one end record; `send_reset` tells the peer, `abortive` closes
// the plain side with an RST.
void EndStream(StreamEngine* e, int plain, int reason, int err, bool send_reset, bool abortive) {
  StreamConn& c = e->conns[plain];
  TrunkStream* ts = c.tstream;
  if (ts == nullptr) return;
  if (Trunk* t = LiveTrunk(e, ts->trunk)) {
    t->streams.erase(ts->sid);
    if (send_reset && !AppendFrame(e, ts->trunk, t, ts->sid, kFrameReset, nullptr, 0)) t->dead = true;  // flushed as a failure
  }
  c.tstream = nullptr;
  delete ts;
  if (abortive) {
    linger l = {1, 0};
    setsockopt(c.fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  }
  const double from = c.bytes_from_client, to = c.bytes_to_client;
  double* rec = StreamEmit(e);
  rec[0] = kEvEnd;
  rec[1] = plain;
  rec[2] = reason;
  rec[3] = err;
  rec[4] = from;
  rec[5] = to;
  StreamCloseConn(e, plain);
}

void CheckDone(StreamEngine* e, int plain) {
  TrunkStream* ts = e->conns[plain].tstream;
  if (ts != nullptr && ts->plain_eof && ts->end_recv && ts->shut) {
    EndStream(e, plain, ts->first_end == 1 ? kEndUpstreamClosed : kEndClientClosed, 0, false, false);
  }
}

void Touch(StreamEngine* e, StreamConn& c) {
  if (c.idle_ms > 0) c.deadline = uv_now(e->loop) + c.idle_ms;
}

// Writes what waits while the socket takes it; false when the trunk failed (and was ended).
bool Send(StreamEngine* e, int tid, Trunk* t) {
  StreamConn* c = &e->conns[tid];
  while (Pending(t) > 0 && (c->ready & kReadyOutClient)) {
    ssize_t n = send(c->fd, t->out + t->out_off, Pending(t), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (WouldBlock(errno)) {
        c->ready &= ~kReadyOutClient;
        break;
      }
      TrunkFail(e, tid, errno);
      return false;
    }
    t->out_off += static_cast<size_t>(n);
  }
  if (Pending(t) == 0) t->out_off = t->out_len = 0;
  return true;
}

// Plain -> trunk: DATA frames while the stream has credit and the output buffer has room.
void ReadPlain(StreamEngine* e, int plain) {
  for (;;) {
    StreamConn* c = &e->conns[plain];
    TrunkStream* ts = c->tstream;
    if (ts == nullptr || ts->plain_eof || !(c->ready & kReadyInClient) || ts->credit == 0) return;
    const int tid = ts->trunk;
    Trunk* t = LiveTrunk(e, tid);
    if (t == nullptr) return;
    if (Pending(t) >= kTrunkOutCap) {
      if (!ts->waiting) t->waiting.push_back(ts->sid);
      ts->waiting = true;
      return;
    }
    const size_t want = std::min<uint64_t>(ts->credit, kTrunkChunk);
    if (!MaybeRekey(e, t) || !Reserve(t, kRecHeader + kFrameHeader + want + kRecTag)) return TrunkFail(e, tid, ENOMEM);
    ssize_t n = recv(c->fd, t->out + t->out_len + kRecHeader + kFrameHeader, want, MSG_DONTWAIT);
    if (n == 0) {
      ts->plain_eof = true;
      if (ts->first_end < 0) ts->first_end = 0;
      if (!AppendFrame(e, tid, t, ts->sid, kFrameEnd, nullptr, 0)) return TrunkFail(e, tid, ENOMEM);
      return CheckDone(e, plain);
    }
    if (n < 0) {
      if (errno == EINTR) continue;
      if (WouldBlock(errno)) {
        c->ready &= ~kReadyInClient;
        return;
      }
      return EndStream(e, plain, kEndClientError, errno, true, true);
    }
    if (!SealFrame(e, tid, t, ts->sid, kFrameData, static_cast<size_t>(n))) return TrunkFail(e, tid, EIO);
    ts->credit -= static_cast<uint64_t>(n);
    c->bytes_from_client += static_cast<double>(n);
    Touch(e, *c);
    if (static_cast<size_t>(n) < want && !(c->ready & kEndSeenClient)) c->ready &= ~kReadyInClient;
    // A chunk's worth waiting is written now, not gathered for the end of the pass: a sender
    // whose congestion control paces (BBR without an fq qdisc) lets a large write out one
    // segment per timer, and a write per chunk mostly leaves at once, the next chunk's read and
    // seal taking about the pacing gap (docs/benchmarks.md, "Congestion control and the bulk TCP
    // rows"). Small frames (a connection's first bytes, credit) still go together at the pass's end.
    if (Pending(t) >= kTrunkChunk && !Send(e, tid, t)) return;
  }
}

// Received bytes -> plain side; grants credit for what it took; shuts the plain side down after
// the last byte once END arrived.
void WritePlain(StreamEngine* e, int plain) {
  StreamConn* c = &e->conns[plain];
  TrunkStream* ts = c->tstream;
  if (ts == nullptr) return;
  while (ts->rx_off < ts->rx.size() && (c->ready & kReadyOutClient)) {
    const size_t left = ts->rx.size() - ts->rx_off;
    ssize_t n = send(c->fd, ts->rx.data() + ts->rx_off, left, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (WouldBlock(errno)) {
        c->ready &= ~kReadyOutClient;
        break;
      }
      return EndStream(e, plain, kEndClientError, errno, true, true);
    }
    ts->rx_off += static_cast<size_t>(n);
    ts->ungranted += static_cast<uint64_t>(n);
    c->bytes_to_client += static_cast<double>(n);
    Touch(e, *c);
    if (static_cast<size_t>(n) < left) c->ready &= ~kReadyOutClient;
  }
  if (ts->rx_off == ts->rx.size()) {
    ts->rx.clear();
    ts->rx_off = 0;
    if (ts->rx.capacity() > kTrunkChunk) ts->rx.shrink_to_fit();  // a stalled reader's window is given back
  }
  // Credit in quarters of the window (a CREDIT per byte would cost a record each); none after END.
  if (!ts->end_recv && ts->ungranted >= kTrunkWindow / 4) {
    Trunk* t = LiveTrunk(e, ts->trunk);
    if (t == nullptr) return;
    uint8_t inc[4];
    PutBe32(inc, static_cast<uint32_t>(ts->ungranted));
    if (!AppendFrame(e, ts->trunk, t, ts->sid, kFrameCredit, inc, 4)) return TrunkFail(e, ts->trunk, ENOMEM);
    ts->allowed += ts->ungranted;
    ts->ungranted = 0;
  }
  if (ts->end_recv && ts->rx.empty() && !ts->shut) {
    shutdown(c->fd, SHUT_WR);
    ts->shut = true;
    CheckDone(e, plain);
  }
}

// One opened frame; false when it failed the trunk.
bool OnFrame(StreamEngine* e, int tid, Trunk* t, const uint8_t* f, size_t len) {
  const uint32_t sid = Be32(f);
  const uint8_t kind = f[4];
  const uint8_t* body = f + kFrameHeader;
  const size_t n = len - kFrameHeader;
  auto it = t->streams.find(sid);
  TrunkStream* ts = it == t->streams.end() ? nullptr : it->second;
  t->frames++;
  switch (kind) {
    case kFrameData: {
      if (n == 0) break;
      if (ts == nullptr) return true;  // a stream this end already ended or reset: dropped
      if (ts->end_recv || n > ts->allowed) break;
      ts->allowed -= n;
      size_t done = 0;
      StreamConn* c = ts->plain >= 0 ? &e->conns[ts->plain] : nullptr;
      // Straight to the plain side when nothing waits before these bytes.
      while (c != nullptr && ts->rx.empty() && done < n && (c->ready & kReadyOutClient)) {
        ssize_t w = send(c->fd, body + done, n - done, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w < 0) {
          if (errno == EINTR) continue;
          if (WouldBlock(errno)) {
            c->ready &= ~kReadyOutClient;
            break;
          }
          EndStream(e, ts->plain, kEndClientError, errno, true, true);
          return !t->dead;
        }
        done += static_cast<size_t>(w);
        ts->ungranted += static_cast<uint64_t>(w);
        c->bytes_to_client += static_cast<double>(w);
        Touch(e, *c);
        if (done < n) c->ready &= ~kReadyOutClient;
      }
      if (done < n) ts->rx.insert(ts->rx.end(), body + done, body + n);
      if (c != nullptr) WritePlain(e, ts->plain);
      return true;
    }
    case kFrameEnd:
      if (n != 0) break;
      if (ts == nullptr) return true;
      if (ts->end_recv) break;
      ts->end_recv = true;
      if (ts->first_end < 0) ts->first_end = 1;
      if (ts->plain >= 0) WritePlain(e, ts->plain);
      return true;
    case kFrameReset:
      if (n != 0) break;
      if (ts == nullptr) return true;
      if (ts->plain >= 0) {
        EndStream(e, ts->plain, kEndUpstreamError, ECONNRESET, false, true);
      } else {
        t->streams.erase(it);
        delete ts;
      }
      return true;
    case kFrameCredit: {
      if (n != 4) break;
      const uint32_t inc = Be32(body);
      if (inc == 0 || inc > 0x7fffffffu) break;
      if (ts == nullptr) return true;
      ts->credit += inc;
      if (ts->credit > (uint64_t(1) << 32)) break;  // more than any window: a broken peer
      if (ts->plain >= 0) ReadPlain(e, ts->plain);
      return true;
    }
    case kFrameReady: {
      if (n != 0) break;
      if (ts == nullptr) return true;  // not expected (dropped before it came)
      if (ts->ready) break;            // once per stream
      ts->ready = true;
      if (ts->plain >= 0) return true;  // attached without waiting for it (tools, tests)
      double* rec = StreamEmit(e);
      rec[0] = kEvTrunkReady;
      rec[1] = tid;
      rec[2] = sid;
      return true;
    }
    default:
      break;
  }
  TrunkFail(e, tid, kErrSealedFormat);
  return false;
}

// Opens every whole record in the read buffer; false when the trunk failed.
bool ParseRecords(StreamEngine* e, int tid, Trunk* t) {
  size_t pos = 0;
  while (!t->dead && t->in_have - pos >= kRecHeader) {
    uint8_t* rec = t->in + pos;
    const uint8_t type = rec[0];
    const size_t n = (size_t(rec[1]) << 16) | (size_t(rec[2]) << 8) | rec[3];
    const bool ok = type == kRecTrunk ? n >= kFrameHeader && n <= kRecMaxPlain : type == kRecKeyUpdate && n == 0;
    if (!ok) {
      TrunkFail(e, tid, kErrSealedFormat);
      return false;
    }
    const size_t total = kRecHeader + n + kRecTag;
    if (t->in_have - pos < total) break;
    if (!OpenRecord(t->open, rec, n)) {
      TrunkFail(e, tid, kErrSealedAuth);
      return false;
    }
    pos += total;
    if (type == kRecKeyUpdate) {
      if (!NextKey(t->open, 0)) {
        TrunkFail(e, tid, EIO);
        return false;
      }
      continue;
    }
    if (!OnFrame(e, tid, t, rec + kRecHeader, n)) return false;
  }
  if (t->dead) return false;
  if (pos > 0) {
    memmove(t->in, t->in + pos, t->in_have - pos);
    t->in_have -= pos;
  }
  return true;
}

void FreeTrunk(StreamEngine* e, Trunk* t) {
  free(t->out);
  free(t->in);
  WipeDir(t->seal, e->ciphers);
  WipeDir(t->open, e->ciphers);
  delete t;
}

void ReadTrunk(StreamEngine* e, int tid) {
  Trunk* t = LiveTrunk(e, tid);
  if (t == nullptr) return;
  t->busy++;
  while (!t->dead && (e->conns[tid].ready & kReadyInClient)) {
    StreamConn& c = e->conns[tid];
    const size_t want = kTrunkIn - t->in_have;
    ssize_t n = recv(c.fd, t->in + t->in_have, want, MSG_DONTWAIT);
    if (n == 0) {
      TrunkFail(e, tid, kErrSealedTruncated);  // a trunk ends only with its control connection
      break;
    }
    if (n < 0) {
      if (errno == EINTR) continue;
      if (WouldBlock(errno)) {
        c.ready &= ~kReadyInClient;
        break;
      }
      TrunkFail(e, tid, errno);
      break;
    }
    t->in_have += static_cast<size_t>(n);
    if (static_cast<size_t>(n) < want && !(c.ready & kEndSeenClient)) c.ready &= ~kReadyInClient;
    if (!ParseRecords(e, tid, t)) break;
  }
  if (--t->busy == 0 && t->closed) FreeTrunk(e, t);
}

// Writes what waits; wakes the streams that stopped on a full buffer once it has room.
void Flush(StreamEngine* e, int tid) {
  Trunk* t = LiveTrunk(e, tid);
  if (t == nullptr) return;
  t->dirty = false;
  if (!Send(e, tid, t)) return;
  if (Pending(t) >= kTrunkOutCap || t->waiting.empty()) return;
  std::vector<uint32_t> wake;
  wake.swap(t->waiting);
  for (uint32_t sid : wake) {
    t = LiveTrunk(e, tid);
    if (t == nullptr) return;
    auto it = t->streams.find(sid);
    if (it == t->streams.end()) continue;
    it->second->waiting = false;
    if (it->second->plain >= 0) ReadPlain(e, it->second->plain);
  }
}

}  // namespace trunk_detail

using namespace trunk_detail;

void TrunkFail(StreamEngine* e, int tid, int err) {
  StreamConn& c = e->conns[tid];
  Trunk* t = c.trunk;
  if (t == nullptr || t->closed || t->failing) return;
  t->failing = t->dead = true;
  std::vector<TrunkStream*> streams;
  streams.reserve(t->streams.size());
  for (auto& kv : t->streams) streams.push_back(kv.second);
  t->streams.clear();
  for (TrunkStream* ts : streams) {
    const int plain = ts->plain;
    if (plain < 0) {
      delete ts;
      continue;
    }
    // EndStream needs the stream on its plain side; the trunk is dead, so it sends nothing.
    EndStream(e, plain, kEndUpstreamError, err, false, true);
  }
  double* rec = StreamEmit(e);
  rec[0] = kEvTrunkEnd;
  rec[1] = tid;
  rec[2] = kEndUpstreamError;
  rec[3] = err;
  linger l = {1, 0};
  setsockopt(e->conns[tid].fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  StreamCloseConn(e, tid);
}

void TrunkOnEvent(StreamEngine* e, int id) {
  StreamConn& c = e->conns[id];
  if (c.kind == Kind::TrunkConn) {
    ReadTrunk(e, id);
    if (LiveTrunk(e, id) != nullptr && (e->conns[id].ready & kReadyOutClient)) Flush(e, id);
    return;
  }
  if (c.tstream == nullptr) return;
  ReadPlain(e, id);
  if (id < static_cast<int>(e->conns.size()) && e->conns[id].tstream != nullptr) WritePlain(e, id);
}

void TrunkFlushDirty(StreamEngine* e) {
  // Flushing wakes streams that append more: bounded passes, the rest at the next wake-up (the
  // trunk's writability edge).
  for (int pass = 0; pass < 64 && !e->trunk_dirty.empty(); pass++) {
    std::vector<int> dirty;
    dirty.swap(e->trunk_dirty);
    for (int tid : dirty) {
      if (tid >= static_cast<int>(e->conns.size()) || e->conns[tid].trunk == nullptr) continue;
      Trunk* t = e->conns[tid].trunk;
      if (t->dead) {
        // A frame could not be sealed while the trunk was being written to: fail it now.
        if (!t->closed) TrunkFail(e, tid, ENOMEM);
        continue;
      }
      Flush(e, tid);
    }
  }
}

void TrunkIdle(StreamEngine* e, int plain) { EndStream(e, plain, kEndIdle, 0, true, false); }

}  // namespace sluice
