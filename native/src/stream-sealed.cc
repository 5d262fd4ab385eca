// The sealed pair's pump (stream-sealed.h): records sealed and opened with Node's own OpenSSL
// (EVP_aes_128_gcm, one reusable EVP_CIPHER_CTX per direction; HKDF-SHA256 for KEY_UPDATE through
// EVP_PKEY_HKDF), resolved from the node binary at load time: no crypto of our own.
//
// Each direction holds one record buffer (kRecBuffer) only while bytes are in flight, taken from
// the engine's pool: a reader that stalls costs its pair one record per direction plus the
// kernel's socket buffers (TCP's window closes behind them), and an idle pair costs none.
#include "stream-sealed.h"
#include "stream-internal.h"

#include <errno.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

namespace sluice {

// One direction: the sealer (0, plain -> sealed) or the opener (1, sealed -> plain).
struct SealDir {
  EVP_CIPHER_CTX* ctx = nullptr;
  uint8_t key[16] = {};
  uint8_t iv[12] = {};
  uint64_t seq = 0;
  uint64_t records = 0;  // sealer: records and plaintext bytes under the current key
  uint64_t bytes = 0;
  uint8_t* buf = nullptr;
  size_t off = 0, len = 0;  // bytes of buf still to write: a sealed record, or an opened record's plaintext
  size_t have = 0;          // opener: bytes read of the current record (and the next one's header)
  size_t rec = 0;           // opener: the size of the record whose plaintext is being written
};

struct SealedPair {
  SealDir dir[2];
  bool plain_eof = false;   // the plain side's FIN was read
  bool end_queued = false;  // the END record is in the sealer's buffer
  bool end_sent = false;    // ... and was written whole
  bool sealed_eof = false;  // the sealed side's FIN was read
  bool end_recv = false;    // an END record was opened (the plain side was shut down for writing)
  int first_end = -1;       // 0: the plain side finished first, 1: the sealed side did
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

void Nonce(const SealDir& d, uint8_t* nonce) {
  memcpy(nonce, d.iv, 12);
  for (int i = 0; i < 8; i++) nonce[4 + i] ^= static_cast<uint8_t>(d.seq >> (56 - 8 * i));
}

// Seals the `n` plaintext bytes at rec + 4 in place: header before, tag after.
bool SealRecord(SealDir& d, uint8_t type, uint8_t* rec, size_t n) {
  rec[0] = type;
  rec[1] = static_cast<uint8_t>(n >> 16);
  rec[2] = static_cast<uint8_t>(n >> 8);
  rec[3] = static_cast<uint8_t>(n);
  uint8_t nonce[12];
  Nonce(d, nonce);
  int outl;
  EVP_CIPHER_CTX* c = d.ctx;
  bool ok = EVP_EncryptInit_ex(c, nullptr, nullptr, nullptr, nonce) == 1 && EVP_EncryptUpdate(c, nullptr, &outl, rec, kRecHeader) == 1 &&
            (n == 0 || EVP_EncryptUpdate(c, rec + kRecHeader, &outl, rec + kRecHeader, static_cast<int>(n)) == 1) &&
            EVP_EncryptFinal_ex(c, rec + kRecHeader + n, &outl) == 1 &&
            EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, kRecTag, rec + kRecHeader + n) == 1;
  d.seq++;
  d.records++;
  d.bytes += n;
  return ok;
}

// Opens the record at `rec` (header already checked, `n` ciphertext bytes) in place.
bool OpenRecord(SealDir& d, uint8_t* rec, size_t n) {
  uint8_t nonce[12];
  Nonce(d, nonce);
  int outl;
  EVP_CIPHER_CTX* c = d.ctx;
  bool ok = EVP_DecryptInit_ex(c, nullptr, nullptr, nullptr, nonce) == 1 && EVP_DecryptUpdate(c, nullptr, &outl, rec, kRecHeader) == 1 &&
            (n == 0 || EVP_DecryptUpdate(c, rec + kRecHeader, &outl, rec + kRecHeader, static_cast<int>(n)) == 1) &&
            EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, kRecTag, rec + kRecHeader + n) == 1 &&
            EVP_DecryptFinal_ex(c, rec + kRecHeader + n, &outl) == 1;
  d.seq++;
  return ok;
}

// The direction's next key (KEY_UPDATE): key | iv = HKDF-SHA256(key | iv, no salt, info, 28), sequence 0.
bool NextKey(SealDir& d, int enc) {
  static const char kInfo[] = "sluice data key update";
  uint8_t ikm[28], out[28];
  memcpy(ikm, d.key, 16);
  memcpy(ikm + 16, d.iv, 12);
  size_t outlen = sizeof out;
  EVP_PKEY_CTX* p = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, nullptr);
  bool ok = p != nullptr && EVP_PKEY_derive_init(p) > 0 && EVP_PKEY_CTX_set_hkdf_md(p, EVP_sha256()) > 0 &&
            EVP_PKEY_CTX_set1_hkdf_key(p, ikm, sizeof ikm) > 0 &&
            EVP_PKEY_CTX_add1_hkdf_info(p, reinterpret_cast<const unsigned char*>(kInfo), sizeof kInfo - 1) > 0 &&
            EVP_PKEY_derive(p, out, &outlen) > 0 && outlen == sizeof out;
  EVP_PKEY_CTX_free(p);
  if (ok) {
    memcpy(d.key, out, 16);
    memcpy(d.iv, out + 16, 12);
    ok = EVP_CipherInit_ex(d.ctx, nullptr, nullptr, d.key, nullptr, enc) == 1;
  }
  OPENSSL_cleanse(ikm, sizeof ikm);
  OPENSSL_cleanse(out, sizeof out);
  d.seq = d.records = d.bytes = 0;
  return ok;
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
    if (!(c->ready & kReadyInUpstream)) return kGo;
    if (o.buf == nullptr && (o.buf = TakeBuffer(e)) == nullptr) return Fail(e, id, kEndUpstreamError, ENOMEM);
    const size_t want = total == 0 ? kRecHeader - o.have : total + kRecHeader - o.have;
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
  EVP_CIPHER_CTX_free(d.ctx);
  d.ctx = nullptr;
  OPENSSL_cleanse(d.key, sizeof d.key);
  OPENSSL_cleanse(d.iv, sizeof d.iv);
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
    StreamEndPair(e, id, p->first_end == 1 ? kEndUpstreamClosed : kEndClientClosed, 0);
    return;
  }
  if (moved && c->idle_ms > 0) c->deadline = uv_now(e->loop) + c->idle_ms;
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
    s.ctx = EVP_CIPHER_CTX_new();
    if (s.ctx == nullptr || EVP_CipherInit_ex(s.ctx, EVP_aes_128_gcm(), nullptr, s.key, nullptr, d == 0 ? 1 : 0) != 1) {
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
