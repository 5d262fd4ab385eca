// What stream-trunk.cc (frames, credit, ends) and stream-trunk-setup.cc (start, expect, attach,
// drop, close) share: the trunk's and a stream's state, and the helpers both use.
#pragma once

#include "stream-trunk.h"
#include "sealed-record.h"

#include <unordered_map>
#include <vector>

namespace sluice {

struct TrunkStream {
  uint32_t sid = 0;
  int trunk = -1;
  int plain = -1;                   // -1 while only expected
  uint64_t credit = kTrunkWindow;   // DATA bytes this end may still send
  uint64_t allowed = kTrunkWindow;  // DATA bytes the peer may still send
  uint64_t ungranted = 0;           // written to the plain side, not granted back yet
  std::vector<uint8_t> rx;          // received, not yet written to the plain side
  size_t rx_off = 0;
  bool plain_eof = false;  // the plain side's FIN was read and END queued
  bool end_recv = false;   // END arrived
  bool shut = false;       // ... and the plain side was shut down for writing after the last byte
  bool waiting = false;    // in the trunk's waiting list (output buffer full)
  int first_end = -1;      // 0: the plain side finished first, 1: the trunk side did
  bool ready = false;      // READY arrived (an expected stream)
};

struct Trunk {
  SealDir seal, open;
  uint8_t* out = nullptr;
  size_t out_cap = 0, out_len = 0, out_off = 0;
  uint8_t* in = nullptr;
  size_t in_have = 0;
  std::unordered_map<uint32_t, TrunkStream*> streams;
  std::vector<uint32_t> waiting;
  bool dirty = false;
  bool dead = false;    // failed or closed: no frame in or out any more
  bool closed = false;  // its connection closed: freed once no call is inside it
  bool failing = false;
  int busy = 0;
  uint64_t frames = 0;  // frames sealed and opened: unchanged means idle both ways
};

namespace trunk_detail {

// The live (not failed, not closed) trunk of connection `id`, else nullptr.
Trunk* LiveTrunk(StreamEngine* e, int id);
// Seals one frame (body copied) into the trunk's output; false when it could not.
bool AppendFrame(StreamEngine* e, int tid, Trunk* t, uint32_t sid, uint8_t kind, const uint8_t* body, size_t n);
// Ends attached stream `plain` with one end record (`send_reset`: RESET to the peer; `abortive`: RST).
void EndStream(StreamEngine* e, int plain, int reason, int err, bool send_reset, bool abortive);
void FreeTrunk(StreamEngine* e, Trunk* t);
// Sealed bytes waiting for the trunk socket.
size_t Pending(const Trunk* t);
// Opens every whole record in the read buffer; false when the trunk failed.
bool ParseRecords(StreamEngine* e, int tid, Trunk* t);

}  // namespace trunk_detail
}  // namespace sluice
