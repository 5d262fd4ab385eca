import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DecisionStore } from '../../../src/admission/crowdsec/decision-store.js';
import { parseStreamBody, type StreamBody } from '../../../src/admission/crowdsec/stream-body.js';
import { parseIpValue } from '../../../src/core/ip-value.js';
import { parseConfig } from '../../../src/config/load.js';

let nextId = 1;
const ban = (value: string) => ({ id: nextId++, origin: 'crowdsec', type: 'ban', scope: 'Ip', value, duration: '1h', scenario: 'crowdsecurity/ssh-bf' });
function body(added: unknown[], deleted: unknown[] = []): StreamBody {
  const r = parseStreamBody(JSON.stringify({ new: added, deleted }));
  if (typeof r === 'string') throw new Error(r);
  return r;
}
const at = (s: DecisionStore, address: string) => s.match(parseIpValue(address)!, 0)?.detail;

test('crowdsec banPrefix: an Ip ban on one IPv6 /128 refuses the whole /64 when asked; by default only the address', () => {
  const v6ban = ban('2001:db8:1:2::5');
  const decisions = body([v6ban, ban('198.51.100.7')]);
  const asDecided = new DecisionStore();
  asDecided.replace(decisions, 0);
  assert.ok(at(asDecided, '2001:db8:1:2::5'));
  assert.equal(at(asDecided, '2001:db8:1:2::6'), undefined, 'default: another /128 of the /64 walks around the ban');

  const wide = new DecisionStore({ ipv4: 32, ipv6: 64 });
  wide.replace(decisions, 0);
  assert.equal(at(wide, '2001:db8:1:2:ffff::1'), 'crowdsecurity/ssh-bf (ban on Ip 2001:db8:1:2::5, origin crowdsec), widened to 2001:db8:1:2::/64');
  assert.ok(at(wide, '2001:db8:1:2::5'));
  assert.equal(at(wide, '2001:db8:1:3::5'), undefined, 'another /64 is not banned');
  assert.ok(at(wide, '198.51.100.7'));
  assert.equal(at(wide, '198.51.100.8'), undefined, 'IPv4 stays per address');
  wide.apply(body([], [{ id: v6ban.id }]), 0);
  assert.equal(at(wide, '2001:db8:1:2::9'), undefined, 'deleting the decision lifts the widened ban');

  const v4 = new DecisionStore({ ipv4: 24, ipv6: 128 });
  v4.replace(body([ban('198.51.100.7')]), 0);
  assert.equal(at(v4, '198.51.100.200'), 'crowdsecurity/ssh-bf (ban on Ip 198.51.100.7, origin crowdsec), widened to 198.51.100.0/24');
  assert.match(at(v4, '2002:c633:64c8::1')!, /widened to 198\.51\.100\.0\/24, 6to4 address embeds 198\.51\.100\.200/);
  assert.equal(at(v4, '198.51.101.1'), undefined);
});

test('crowdsec banPrefix in the config: compiled when set, absent otherwise', () => {
  const head = 'crowdsec:\n  url: http://127.0.0.1:8080/\n  apiKey: k\n';
  const r = parseConfig(`${head}  banPrefix: { ipv6: 64 }\n`);
  assert.ok(r.ok, JSON.stringify(!r.ok && r.issues));
  if (r.ok) assert.deepEqual(r.config.crowdsec?.banPrefix, { ipv4: 32, ipv6: 64 });
  const plain = parseConfig(head);
  assert.ok(plain.ok && plain.config.crowdsec?.banPrefix === undefined);
  const bad = parseConfig(`${head}  banPrefix: { ipv6: 200 }\n`);
  assert.ok(!bad.ok && bad.issues[0]!.path === 'crowdsec.banPrefix.ipv6');
});
