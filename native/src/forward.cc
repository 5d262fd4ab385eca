// Established tunnel sessions forwarded inside the batch (docs/datapath.md, "Established sessions
// in the batch"): JavaScript installs an entry once it has admitted a session, and from then on
// that session's datagrams are moved here as they are harvested, without a JavaScript call.
//
// Two kinds of entry, one per direction of a session:
//   seal:  a plaintext datagram received on socket `in_sock` (from source `src` on a listener; any
//          datagram on a connected socket) is sealed as a tunnel data datagram for `tag_out` under
//          sealing key slot `seal_slot` (header written here, with the next sequence of the
//          sequence counter that slot shares with JavaScript) and sent from `out_sock` to `dst`.
//   plain: a tunnel data datagram without an origin block, opened in the harvest under opening key
//          slot `open_slot` with tag `tag_in` (from `src` when `check_src`), has its plaintext sent
//          from `out_sock` to `dst` (family 0: `out_sock` is connected). A datagram behind ICE's
//          data prefix (a direct peer path's key opens only those) is taken after the prefix.
// A plain-matched entry may reseal instead (forward-peer.cc: a relayed peer flow at the gateway).
// A seal entry may be framed (forward-peer.cc): one byte goes before the tunnel datagram, ICE's
// data prefix on a direct peer path, so the wire is what ice/channel.ts frames.
// Everything the entry cannot decide (no credit left, too large, another source, an origin block,
// no sequence left) is left in the batch for JavaScript, which decides as it always has.
//
// Shared with JavaScript (src/datapath/offload.ts, native-keys.ts): per entry, kFwdCounters doubles
// [datagrams, bytes, send errors] that only this file writes, and one int32 of credit that
// JavaScript sets (datagrams this entry may still forward; < 0 without limit) and this file
// decrements; per sealing key slot, the double `seqs[slot]`: the next sequence number. A plain
// entry under a reply budget keeps its allowance in bytes in counters[3], which both sides write
// (JavaScript when it folds the counters into the session's budget windows, here per datagram).
#include "forward.h"

#include <errno.h>
#include <string.h>

namespace sluice {

constexpr uint8_t kIcePrefix = 0x0b;  // ice/channel.ts ICE_DATA_PREFIX

static inline uint32_t Be32(const uint8_t* p) { return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | p[3]; }
static inline void PutBe32(uint8_t* p, uint32_t v) {
  p[0] = v >> 24;
  p[1] = v >> 16;
  p[2] = v >> 8;
  p[3] = v;
}

// The lookup key of a seal entry: exact for IPv4 and connected sockets, a hash (checked against
// the entry) for IPv6.
uint64_t SourceKey(int sock, const int32_t* src) {
  uint64_t k = static_cast<uint64_t>(static_cast<uint32_t>(sock)) << 48;
  if (src[1] == 0) return k;
  if (src[1] == 4) return k ^ (static_cast<uint64_t>(static_cast<uint16_t>(src[0])) << 32) ^ static_cast<uint32_t>(src[2]);
  uint64_t h = 1469598103934665603ull;
  for (int i = 0; i < 6; i++) h = (h ^ static_cast<uint32_t>(src[i])) * 1099511628211ull;
  return k ^ (h & 0xffffffffffffull) ^ (1ull << 47);
}

// Sources as rx records hold them: [port, family, address x4] (IPv4 records zero the rest).
static inline bool SameSource(const int32_t* a, const int32_t* b) { return memcmp(a, b, 6 * sizeof(int32_t)) == 0; }

void RemoveForward(FwdState* f, int id) {
  Fwd& x = f->entries[id];
  if (!x.used) return;
  auto& map = x.tagging == kUntagged ? f->by_lead : x.seal || x.tagging == kTagged ? f->by_src : f->by_tag;
  auto it = map.find(x.key);
  if (it != map.end() && it->second == id) map.erase(it);
  if (x.pair >= 0) f->entries[x.pair].paired_by = -1;
  if (x.paired_by >= 0) f->entries[x.paired_by].pair = -1;
  x = Fwd();
  f->credits[id] = 0;
  if (id < f->gens_max) f->gens[id]++;
  LeavePool(f, id);
  f->free_ids.push_back(id);
}

void ForgetForwards(Engine* e, int sock, int slot) {
  FwdState* f = e->fwd;
  if (f == nullptr || (f->by_src.empty() && f->by_tag.empty() && f->by_lead.empty())) return;
  for (size_t i = 0; i < f->entries.size(); i++) {
    const Fwd& x = f->entries[i];
    if (!x.used) continue;
    if ((sock >= 0 && (x.in_sock == sock || x.out_sock == sock)) || (slot >= 0 && (x.seal_slot == slot || x.open_slot == slot)))
      RemoveForward(f, static_cast<int>(i));
  }
}

void FreeForwards(Engine* e) {
  FwdState* f = e->fwd;
  if (f == nullptr) return;
  for (int i = 0; i < f->gens_max; i++) f->gens[i]++;  // every entry gone with the table
  for (napi_ref r : f->refs)
    if (r != nullptr) napi_delete_reference(e->env, r);
  FreePools(e, f);
  delete f;
  e->fwd = nullptr;
}

// Appends one message; false when the scratch is full (the datagram stays for JavaScript).
mmsghdr* NextMessage(Engine* e, FwdState* f, int m, int entry, const Fwd& x, int iovs) {
  const Sock& out = e->socks[x.out_sock];
  mmsghdr& h = f->hdrs[m];
  memset(&h, 0, sizeof h);
  if (x.dst[1] != 0) {
    socklen_t len;
    if (!DestinationOf(out, x.dst, &f->names[m], &len)) return nullptr;
    h.msg_hdr.msg_name = &f->names[m];
    h.msg_hdr.msg_namelen = len;
  }
  h.msg_hdr.msg_iov = &f->iovs[iovs];
  f->msg_entry[m] = entry;
  return &h;
}

static void Sent(FwdState* f, int k) {
  const Fwd& x = f->entries[f->msg_entry[k]];
  double* c = f->counters + f->msg_entry[k] * kFwdCounters;
  c[0] += 1;
  c[1] += f->msg_len[k];
  if (x.pair >= 0) f->counters[x.pair * kFwdCounters + 3] += x.ratio * f->msg_len[k];
}

static void Lost(FwdState* f, int k) { f->counters[f->msg_entry[k] * kFwdCounters + 2] += 1; }

static bool SameDestination(const msghdr& a, const msghdr& b) {
  return a.msg_namelen == b.msg_namelen && (a.msg_namelen == 0 || memcmp(a.msg_name, b.msg_name, a.msg_namelen) == 0);
}

// Sends the harvest's datagrams [i, j) of one socket: runs of equal-sized datagrams to one
// destination as single UDP_SEGMENT sends (as tx.cc does for staged records), the rest as they are.
static void SendGroup(Engine* e, FwdState* f, Sock& out, int i, int j) {
  int n = 0;
  for (int k = i; k < j;) {
    int size = f->msg_wire[k];
    int run = 1, bytes = size;
    if (e->gso && size < out.gso_limit) {
      while (k + run < j && run < kMaxGsoSegments) {
        int q = f->msg_wire[k + run];
        if (q > size || bytes + q > kMaxGsoBytes || !SameDestination(f->hdrs[k].msg_hdr, f->hdrs[k + run].msg_hdr)) break;
        bytes += q;
        run++;
        if (q < size) break;  // only the last segment may be shorter
      }
    }
    mmsghdr& h = f->sends[n];
    h = f->hdrs[k];
    for (int r = 1; r < run; r++) h.msg_hdr.msg_iovlen += f->hdrs[k + r].msg_hdr.msg_iovlen;  // contiguous iovecs
    if (run > 1) PutSegment(&h.msg_hdr, &f->cmsg[n * 4], size);
    f->send_first[n] = k;
    f->send_count[n] = run;
    n++;
    k += run;
  }
  int done = 0;
  while (done < n) {
    int r = sendmmsg(out.fd, &f->sends[done], n - done, 0);
    if (r > 0) {
      for (int m = done; m < done + r; m++)
        for (int k = f->send_first[m]; k < f->send_first[m] + f->send_count[m]; k++) Sent(f, k);
      done += r;
      continue;
    }
    int err = errno;
    if (err == EINTR) continue;
    int first = f->send_first[done], count = f->send_count[done];
    if (count > 1 && GsoRetryable(err)) {
      // This segment size cannot be offloaded here: lower the socket's limit, send one by one.
      if (f->msg_wire[first] < out.gso_limit) out.gso_limit = f->msg_wire[first];
      for (int k = first; k < first + count; k++) {
        int rr;
        while ((rr = sendmsg(out.fd, &f->hdrs[k].msg_hdr, 0)) < 0 && errno == EINTR) {
        }
        if (rr < 0) Lost(f, k);
        else Sent(f, k);
      }
    } else {
      // A full buffer, an ICMP error: these datagrams are lost (counted); the rest are tried again.
      for (int k = first; k < first + count; k++) Lost(f, k);
    }
    done++;
  }
}

static void Send(Engine* e, FwdState* f, int m) {
  for (int i = 0; i < m;) {
    int sock = f->entries[f->msg_entry[i]].out_sock;
    int j = i + 1;
    while (j < m && f->entries[f->msg_entry[j]].out_sock == sock) j++;
    SendGroup(e, f, e->socks[sock], i, j);
    i = j;
  }
}

int ForwardHarvested(Engine* e, int used) {
  FwdState* f = e->fwd;
  if (f == nullptr || (f->by_src.empty() && f->by_tag.empty() && f->by_lead.empty())) return 0;
  int m = 0, iovs = 0, forwarded = 0;
  int socks = static_cast<int>(e->socks.size());
  // The last lookup of each map: a session's datagrams come in runs (a client's burst, a GRO run
  // cut up), and with many sessions each map lookup is a likely cache miss. Valid for this call
  // only: entries change between harvests, never during one.
  uint64_t last_tag_key = ~0ull, last_src_key = ~0ull;
  int64_t now = 0;  // the pools' clock, read once for the batch (at its first pooled datagram)
  int last_tag_id = -1, last_src_id = -1;
  for (int i = 0; i < used; i++) {
    int32_t* rec = e->rxm + i * kRxRec;
    int sock = rec[0], len = rec[1];
    if (sock < 0 || sock >= socks || len < 0) continue;
    uint8_t* d = e->rx + static_cast<size_t>(i) * kSlotBytes;
    int open_slot = OpenedKey(e, i);
    int id;
    int skip = 0;  // ICE's data prefix before an opened datagram (a direct peer path's key only opens those)
    if (open_slot >= 0) {
      // Opened in place: data (0x0c) without an origin block.
      skip = d[0] == kIcePrefix ? 1 : 0;
      if (d[skip] != 0x0c || d[skip + 1] != 0) continue;
      uint64_t key = TagKey(open_slot, Be32(d + skip + 6));
      if (key != last_tag_key) {
        auto it = f->by_tag.find(key);
        last_tag_key = key;
        last_tag_id = it == f->by_tag.end() ? -1 : it->second;
      }
      if (last_tag_id < 0) continue;
      id = last_tag_id;
    } else {
      const int32_t* src = rec + 2;
      int32_t none[6] = {};
      if (!e->socks[sock].listener) src = none;
      uint64_t key = SourceKey(sock, src);
      if (key != last_src_key) {
        auto it = f->by_src.find(key);
        last_src_key = key;
        last_src_id = it == f->by_src.end() ? -1 : it->second;
      }
      if (last_src_id >= 0) {
        id = last_src_id;
        if (!SameSource(f->entries[id].src, src) || f->entries[id].in_sock != sock) continue;
      } else if ((id = UntaggedMatch(f, sock, src, d, len)) < 0) {  // forward-tag.cc
        continue;
      }
    }
    Fwd& x = f->entries[id];
    int32_t& credit = f->credits[id];
    if (x.out_sock >= socks || e->socks[x.out_sock].fd < 0) continue;
    if (x.seal && x.tagging == 0 && e->socks[sock].solo != id && OneSession(e->socks[sock]))
      e->socks[sock].solo = id;  // park.cc: this socket carries this session alone
    if (credit == 0) {
      // Beyond its credit: its send budget's pool forwards it, drops it (counted), or leaves it to JavaScript.
      if (now == 0) now = PoolNow();
      int v = PoolAdmit(f, id, now);
      if (v == kPoolDropped) {
        rec[0] = -1;
        forwarded++;
        // A socket of this session alone is left unread until the round ends (park.cc): its
        // excess waits or is dropped by the kernel there (counted by this refusal's reason)
        // instead of read to be dropped.
        if (e->socks[sock].solo == id) ParkSocket(e, sock, id);
      }
      if (v != kPoolForward) continue;
    }
    if (x.tagging != 0) {
      int n = TagInto(e, f, id, m, iovs, d, len);  // forward-tag.cc
      if (n == 0) continue;
      iovs += n;
      m++;
    } else if (!x.seal) {
      if (x.check_src && !SameSource(x.src, rec + 2)) continue;
      int plain = len - skip - kHeader - kTag;
      if (plain > x.max_len) continue;
      double* allowance = f->counters + id * kFwdCounters + 3;
      if (x.budgeted && *allowance < plain) continue;  // JavaScript drops it and counts the drop
      if (x.budgeted) *allowance -= plain;
      mmsghdr* h = NextMessage(e, f, m, id, x, iovs);
      if (h == nullptr) continue;
      if (x.reseal) {
        int n = ResealInto(e, f, x, m, iovs, d + skip + kHeader, plain);
        if (n < 0) {
          f->counters[id * kFwdCounters + 2] += 1;
          rec[0] = -1;
          forwarded++;
        }
        if (n <= 0) continue;
        h->msg_hdr.msg_iovlen = n;
        iovs += n;
        f->msg_wire[m] = kHeader + plain + kTag;
        f->msg_len[m++] = plain;
        if (credit > 0) credit--;
        rec[0] = -1;
        forwarded++;
        continue;
      }
      f->iovs[iovs] = {d + skip + kHeader, static_cast<size_t>(plain)};
      h->msg_hdr.msg_iovlen = 1;
      iovs += 1;
      f->msg_wire[m] = plain;
      f->msg_len[m++] = plain;
    } else {
      if (len > x.max_len) continue;
      double* seq = x.seal_slot < f->seqs_max ? f->seqs + x.seal_slot : nullptr;
      if (seq == nullptr || *seq > kMaxSequence) continue;
      int pre = x.frame != 0 ? 1 : 0;  // forward-peer.cc
      if (pre && f->framed.empty()) continue;
      mmsghdr* h = NextMessage(e, f, m, id, x, iovs);
      if (h == nullptr) continue;
      uint8_t* w = pre ? f->framed.data() + static_cast<size_t>(m) * kFrameWrap + 1 : f->wrap.data() + static_cast<size_t>(m) * (kHeader + kTag);
      if (pre) w[-1] = x.frame;
      uint64_t s = static_cast<uint64_t>(*seq);
      w[0] = 0x0c;
      w[1] = 0;
      PutBe32(w + 2, x.peer_key);
      PutBe32(w + 6, x.tag_out);
      for (int b = 0; b < 6; b++) w[10 + b] = static_cast<uint8_t>(s >> (8 * (5 - b)));
      if (!SealParts(e, x.seal_slot, w, d, len, w + kHeader)) {
        // The payload may be half encrypted: never handed on, counted as lost.
        f->counters[id * kFwdCounters + 2] += 1;
        rec[0] = -1;
        forwarded++;
        continue;
      }
      *seq += 1;
      // Header, payload sealed in place, tag; the iovecs of consecutive datagrams are contiguous.
      int n = 0;
      f->iovs[iovs + n++] = {w - pre, static_cast<size_t>(pre + kHeader)};
      if (len > 0) f->iovs[iovs + n++] = {d, static_cast<size_t>(len)};
      f->iovs[iovs + n++] = {w + kHeader, static_cast<size_t>(kTag)};
      h->msg_hdr.msg_iovlen = n;
      iovs += n;
      f->msg_wire[m] = pre + kHeader + len + kTag;
      f->msg_len[m++] = len;
    }
    if (credit > 0) credit--;
    rec[0] = -1;  // JavaScript skips it
    forwarded++;
  }
  if (m > 0) Send(e, f, m);
  return forwarded;
}

}  // namespace sluice
