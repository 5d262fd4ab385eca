// The sealed pair's pump (stream-sealed.h); the record crypto of a direction is sealed-record.cc.
//
// Each direction holds one record buffer (kRecBuffer) only while bytes are in flight, taken from
// the engine's pool: a reader that stalls costs its pair one record per direction plus the
// kernel's socket buffers (TCP's window closes behind them), and an idle pair costs none.
#include "stream-sealed.h"
#include "stream-internal.h"
#include "sealed-record.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

namespace sluice {

struct SealedPair {
  SealDir dir[2];
  bool plain_eof = false;   // the plain side's FIN was read
  bool end_queued = false;  // the END record is in the sealer's buffer
  bool end_sent = false;    // ... and was written whole
  bool sealed_eof = false;  // the sealed side's FIN was read
  bool end_recv = false;    // an END record was opened (the plain side was shut down for writing)
  int first_end = -1;       // 0: the plain side finished first, 1: the sealed side did
  bool keep = false;        // a clean end keeps the sealed side (SealedKeep)
};

namespace {

enum Step { kGo, kEnded };

uint8_t* TakeBuffer(StreamEngine* e) {
  if (!e->sealed_pool.empty()) {
    uint8_t* b = e->sealed_pool.back();
    e->sealed_pool.pop_back();
    return b;
  }
  return static_cast<uint8_t*>(malloc(kRecBuffer));
}

void PutBuffer(StreamEngine* e, uint8_t** b) {
  if (*b == nullptr) return;
  if (e->sealed_pool.size() < kSealedPoolMax) e->sealed_pool.push_back(*b);
  else free(*b);
  *b = nullptr;
}

// Ends the pair with a reset of both sides (SO_LINGER 0): what a failure of either side does.
Step Fail(StreamEngine* e, int id, int reason, int err) {
  linger l = {1, 0};
  setsockopt(e->conns[id].fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  setsockopt(e->conns[e->conns[id].other].fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  StreamEndPair(e, id, reason, err);
  return kEnded;
}

inline bool WouldBlock(int err) { return err == EAGAIN || err == EWOULDBLOCK; }

// Plain -> sealed: reads up to a record's worth, seals it, writes it whole before reading more.
Step SealSide(StreamEngine* e, int id, bool* moved) {
  StreamConn* c = &e->conns[id];
  SealedPair* p = c->sealed;
  SealDir& s = p->dir[0];
  const int plain = c->fd, sealed = e->conns[c->other].fd;
  for (;;) {
    if (s.off < s.len) {
      if (!(c->ready & kReadyOutUpstream)) return kGo;
      ssize_t n = send(sealed, s.buf + s.off, s.len - s.off, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (!WouldBlock(errno)) return Fail(e, id, kEndUpstreamError, errno);
        c->ready &= ~kReadyOutUpstream;
        return kGo;
      }
      s.off += static_cast<size_t>(n);
      *moved = true;
      if (s.off < s.len) {
        c->ready &= ~kReadyOutUpstream;
        return kGo;
      }
      s.off = s.len = 0;
      PutBuffer(e, &s.buf);
      if (p->end_queued) {
        p->end_sent = true;
        return kGo;
      }
      continue;
    }
    if (p->end_queued) return kGo;
    // Before a record could pass a limit under this key (never twice in a row: a new key has sealed nothing).
    const bool rekey = s.records > 0 && (s.records + 2 > e->sealed_max_records || s.bytes + kRecMaxPlain > e->sealed_max_bytes);
    if (p->plain_eof || rekey) {
      if (s.buf == nullptr && (s.buf = TakeBuffer(e)) == nullptr) return Fail(e, id, kEndClientError, ENOMEM);
      // END and KEY_UPDATE are sealed under the current key; after KEY_UPDATE the next key seals.
      if (!SealRecord(s, p->plain_eof ? kRecEnd : kRecKeyUpdate, s.buf, 0) || (!p->plain_eof && !NextKey(s, 1))) {
        return Fail(e, id, kEndClientError, EIO);
      }
      s.len = kRecHeader + kRecTag;
      p->end_queued = p->plain_eof;
      continue;
    }
    if (!(c->ready & kReadyInClient)) return kGo;
    if (s.buf == nullptr && (s.buf = TakeBuffer(e)) == nullptr) return Fail(e, id, kEndClientError, ENOMEM);
    ssize_t n = recv(plain, s.buf + kRecHeader, kRecMaxPlain, MSG_DONTWAIT);
    if (n == 0) {
      p->plain_eof = true;
      if (p->first_end < 0) p->first_end = 0;
      continue;
    }
    if (n < 0) {
      if (errno == EINTR) continue;
      if (!WouldBlock(errno)) return Fail(e, id, kEndClientError, errno);
      c->ready &= ~kReadyInClient;
      PutBuffer(e, &s.buf);
      return kGo;
    }
    c->bytes_from_client += n;
    // A short read drained the socket (bytes arriving after it are a new edge), unless its FIN or
    // error was reported: the read that returns it is still to come.
    if (static_cast<size_t>(n) < kRecMaxPlain && !(c->ready & kEndSeenClient)) c->ready &= ~kReadyInClient;
    if (!SealRecord(s, kRecData, s.buf, static_cast<size_t>(n))) return Fail(e, id, kEndClientError, EIO);
    s.len = kRecHeader + static_cast<size_t>(n) + kRecTag;
    *moved = true;
  }
}

// The opener's buffer without the record of `n` bytes at its start.
void Consume(SealDir& o, size_t n) {
  memmove(o.buf, o.buf + n, o.have - n);
  o.have -= n;
}

// Sealed -> plain: reads a record (and the next one's header with its tail, so a record takes one
// read), opens it in place, writes its plaintext whole before reading more.
Step OpenSide(StreamEngine* e, int id, bool* moved) {
  StreamConn* c = &e->conns[id];
  SealedPair* p = c->sealed;
  SealDir& o = p->dir[1];
  const int plain = c->fd, sealed = e->conns[c->other].fd;
  for (;;) {
    if (o.off < o.len) {
      if (!(c->ready & kReadyOutClient)) return kGo;
      ssize_t n = send(plain, o.buf + o.off, o.len - o.off, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (!WouldBlock(errno)) return Fail(e, id, kEndClientError, errno);
        c->ready &= ~kReadyOutClient;
        return kGo;
      }
      c->bytes_to_client += n;
      o.off += static_cast<size_t>(n);
      *moved = true;
      if (o.off < o.len) {
        c->ready &= ~kReadyOutClient;
        return kGo;
      }
      o.off = o.len = 0;
      Consume(o, o.rec);
      continue;
    }
    if (p->end_recv) return kGo;
    size_t total = 0;
    if (o.have >= kRecHeader) {
      const uint8_t type = o.buf[0];
      const size_t n = (size_t(o.buf[1]) << 16) | (size_t(o.buf[2]) << 8) | o.buf[3];
      const bool ok = type == kRecData ? n >= 1 && n <= kRecMaxPlain : (type == kRecEnd || type == kRecKeyUpdate) && n == 0;
      if (!ok) return Fail(e, id, kEndUpstreamError, kErrSealedFormat);
      total = kRecHeader + n + kRecTag;
      if (o.have >= total) {
        if (!OpenRecord(o, o.buf, n)) return Fail(e, id, kEndUpstreamError, kErrSealedAuth);
        *moved = true;
        if (type == kRecData) {
          o.off = kRecHeader;
          o.len = kRecHeader + n;
          o.rec = total;
          continue;
        }
        Consume(o, total);
        if (type == kRecKeyUpdate) {
          if (!NextKey(o, 0)) return Fail(e, id, kEndUpstreamError, EIO);
          continue;
        }
        // END: nothing may follow it.
        if (o.have > 0) return Fail(e, id, kEndUpstreamError, kErrSealedFormat);
        PutBuffer(e, &o.buf);
        p->end_recv = true;
        if (p->first_end < 0) p->first_end = 1;
        shutdown(plain, SHUT_WR);
        return kGo;
      }
    }
    if (p->sealed_eof) return Fail(e, id, kEndUpstreamError, kErrSealedTruncated);
    if (!(c->ready & kReadyInUpstream)) {
      if (o.have == 0) PutBuffer(e, &o.buf);  // between records: an idle pair holds no buffer
      return kGo;
    }
    if (o.buf == nullptr && (o.buf = TakeBuffer(e)) == nullptr) return Fail(e, id, kEndUpstreamError, ENOMEM);
    // The next record's header comes with this one's tail, except after an END that keeps the connection.
    const bool last = p->keep && total > 0 && o.buf[0] == kRecEnd;
    const size_t want = total == 0 ? kRecHeader - o.have : total + (last ? 0 : kRecHeader) - o.have;
    ssize_t n = recv(sealed, o.buf + o.have, want, MSG_DONTWAIT);
    if (n == 0) {
      p->sealed_eof = true;
      continue;
    }
    if (n < 0) {
      if (errno == EINTR) continue;
      if (!WouldBlock(errno)) return Fail(e, id, kEndUpstreamError, errno);
      c->ready &= ~kReadyInUpstream;
      if (o.have == 0) PutBuffer(e, &o.buf);
      return kGo;
    }
    o.have += static_cast<size_t>(n);
    if (static_cast<size_t>(n) < want && !(c->ready & kEndSeenUpstream)) c->ready &= ~kReadyInUpstream;
  }
}

void FreeDir(StreamEngine* e, SealDir& d) {
  PutBuffer(e, &d.buf);
  WipeDir(d, e->ciphers);
}

}  // namespace

void SealedPump(StreamEngine* e, int id) {
  bool moved = false;
  if (SealSide(e, id, &moved) == kEnded || OpenSide(e, id, &moved) == kEnded) return;
  StreamConn* c = &e->conns[id];
  SealedPair* p = c->sealed;
  // Both directions finished cleanly: closing both sockets sends the sealed side's FIN (the plain
  // side's write half is already shut down).
  if (p->end_sent && p->end_recv) {
    if (p->keep) return SealedEndKept(e, id, p->first_end == 1 ? kEndUpstreamClosed : kEndClientClosed);
    StreamEndPair(e, id, p->first_end == 1 ? kEndUpstreamClosed : kEndClientClosed, 0);
    return;
  }
  if (moved && c->idle_ms > 0) c->deadline = uv_now(e->loop) + c->idle_ms;
}

void SealedKeep(StreamEngine* e, int plain) {
  if (e->conns[plain].sealed != nullptr) e->conns[plain].sealed->keep = true;
}

void SealedFree(StreamEngine* e, StreamConn* c) {
  SealedPair* p = c->sealed;
  if (p == nullptr) return;
  FreeDir(e, p->dir[0]);
  FreeDir(e, p->dir[1]);
  delete p;
  c->sealed = nullptr;
}

void SealedPoolClear(StreamEngine* e) {
  for (uint8_t* b : e->sealed_pool) free(b);
  e->sealed_pool.clear();
  RecordCiphersFree(e->ciphers);
}

int SealedStart(StreamEngine* e, int client, int upstream, const uint8_t* keys, uint64_t seal_seq, uint64_t open_seq, uint32_t idle_ms,
                const uint8_t* first, size_t first_len, const uint8_t* pending, size_t pending_len) {
  if (first_len > kRecMaxPlain || pending_len > kRecBuffer) return -EINVAL;
  SealedPair* p = new SealedPair();
  for (int d = 0; d < 2; d++) {
    SealDir& s = p->dir[d];
    memcpy(s.key, keys + 28 * d, 16);
    memcpy(s.iv, keys + 28 * d + 16, 12);
    s.seq = d == 0 ? seal_seq : open_seq;
    if (!KeyDir(s, e->ciphers, d == 0 ? 1 : 0)) {
      FreeDir(e, p->dir[0]);
      FreeDir(e, p->dir[1]);
      delete p;
      return -ENOTSUP;
    }
  }
  // What was read before the join is staged first, so a failure below leaves both connections held.
  bool staged = true;
  if (first_len > 0) {
    SealDir& s = p->dir[0];
    staged = (s.buf = TakeBuffer(e)) != nullptr;
    if (staged) {
      memcpy(s.buf + kRecHeader, first, first_len);
      staged = SealRecord(s, kRecData, s.buf, first_len);
      s.len = kRecHeader + first_len + kRecTag;
    }
  }
  if (staged && pending_len > 0) {
    SealDir& o = p->dir[1];
    staged = (o.buf = TakeBuffer(e)) != nullptr;
    if (staged) {
      memcpy(o.buf, pending, pending_len);
      o.have = pending_len;
    }
  }
  int err = staged ? StreamStartPair(e, client, upstream, idle_ms) : -ENOMEM;
  if (err < 0) {
    FreeDir(e, p->dir[0]);
    FreeDir(e, p->dir[1]);
    delete p;
    return err;
  }
  StreamConn& c = e->conns[client];
  c.sealed = p;
  c.bytes_from_client += static_cast<double>(first_len);
  return 0;
}

}  // namespace sluice
