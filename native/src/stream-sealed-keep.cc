// A sealed pair's clean end that keeps its data connection (stream-sealed.h, "keep"): both
// directions ended with END, so the sealed side has nothing of this stream left in flight either
// way and can carry another stream. The plain side closes as after any clean end; the sealed side
// becomes a held connection again, still in the epoll set edge-triggered (its edges are kept for
// the next pair, as a dialed connection's are), and JavaScript gets one kept-end record:
//   [5, plain id, reason, 0, bytes from client, bytes to client, sealed id]
// The opener never reads past the END record of a pair that keeps its connection, so whatever
// follows it (the agent's next hello) is still in the socket for whoever reads it next.
#include "stream-sealed.h"
#include "stream-internal.h"

namespace sluice {

void SealedEndKept(StreamEngine* e, int id, int reason) {
  double* rec = StreamEmit(e);
  // Taken after StreamEmit: a delivery may have run JavaScript that grew the table.
  StreamConn& c = e->conns[id];
  const int sealed = c.other;
  rec[0] = kEvEndKept;
  rec[1] = id;
  rec[2] = reason;
  rec[3] = 0;
  rec[4] = c.bytes_from_client;
  rec[5] = c.bytes_to_client;
  rec[6] = sealed;
  StreamConn& s = e->conns[sealed];
  s.kind = Kind::Held;
  s.other = -1;
  s.watched = false;
  // Unknown since the pair stopped reading it: counted as ready, so the next pair tries it once.
  s.ready = kReadyInClient | kReadyOutClient;
  StreamCloseConn(e, id);
}

}  // namespace sluice
