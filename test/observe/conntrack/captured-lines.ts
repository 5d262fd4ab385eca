/**
 * Real `conntrack -E -o extended,id,timestamp` output (conntrack-tools 1.4.7, Linux 6.18), captured
 * inside throwaway namespaces: 10.77.0.1 / fd77::1 is the watched namespace, 10.77.0.2 / fd77::2
 * its veth peer. `loopback` is a single namespace talking to itself (with UPDATE events). Tabs and
 * padding are as printed.
 */
export const captured = {
  tcpIngressNew: '[1795306106.639539]\t    [NEW] ipv4     2 tcp      6 120 SYN_SENT src=10.77.0.2 dst=10.77.0.1 sport=57926 dport=7000 [UNREPLIED] src=10.77.0.1 dst=10.77.0.2 sport=7000 dport=57926 id=2609621952',
  udpEgressNew: '[1795306106.852053]\t    [NEW] ipv4     2 udp      17 30 src=10.77.0.1 dst=10.77.0.2 sport=39460 dport=7001 [UNREPLIED] src=10.77.0.2 dst=10.77.0.1 sport=7001 dport=39460 id=3980249319',
  udpEgressMarkedNew: '[1795306107.858519]\t    [NEW] ipv4     2 udp      17 30 src=10.77.0.1 dst=10.77.0.2 sport=58833 dport=7002 [UNREPLIED] src=10.77.0.2 dst=10.77.0.1 sport=7002 dport=58833 mark=16 id=2633108882',
  icmpIngressNew: '[1795306108.864772]\t    [NEW] ipv4     2 icmp     1 30 src=10.77.0.2 dst=10.77.0.1 type=8 code=0 id=23761 [UNREPLIED] src=10.77.0.1 dst=10.77.0.2 type=0 code=0 id=23761 id=2737866359',
  icmp6EgressNew: '[1795306109.074196]\t    [NEW] ipv6     10 icmpv6   58 30 src=fd77::1 dst=fd77::2 type=128 code=0 id=23762 [UNREPLIED] src=fd77::2 dst=fd77::1 type=129 code=0 id=23762 id=615113515',
  tcp6IngressNew: '[1795306109.288720]\t    [NEW] ipv6     10 tcp      6 120 SYN_SENT src=fd77::2 dst=fd77::1 sport=44742 dport=7003 [UNREPLIED] src=fd77::1 dst=fd77::2 sport=7003 dport=44742 id=2739720542',
  udpEgressFlushed: '[1795306109.594043]\t[DESTROY] ipv4     2 udp      17 27 src=10.77.0.1 dst=10.77.0.2 sport=39460 dport=7001 packets=1 bytes=32 [UNREPLIED] src=10.77.0.2 dst=10.77.0.1 sport=7001 dport=39460 packets=0 bytes=0 delta-time=3 id=3980249319 [USERSPACE] portid=23770 progname=conntrack',
  udpEgressMarkedFlushed: '[1795306109.595199]\t[DESTROY] ipv4     2 udp      17 28 src=10.77.0.1 dst=10.77.0.2 sport=58833 dport=7002 packets=1 bytes=35 [UNREPLIED] src=10.77.0.2 dst=10.77.0.1 sport=7002 dport=58833 packets=0 bytes=0 mark=16 delta-time=2 id=2633108882 [USERSPACE] portid=23770',
  icmp6EgressFlushed: '[1795306109.595260]\t[DESTROY] ipv6     10 icmpv6   58 29 src=fd77::1 dst=fd77::2 type=128 code=0 id=23762 packets=1 bytes=104 src=fd77::2 dst=fd77::1 type=129 code=0 id=23762 packets=1 bytes=104 delta-time=0 id=615113515 [USERSPACE] portid=23770',
  icmpIngressFlushed: '[1795306109.595285]\t[DESTROY] ipv4     2 icmp     1 29 src=10.77.0.2 dst=10.77.0.1 type=8 code=0 id=23761 packets=2 bytes=168 src=10.77.0.1 dst=10.77.0.2 type=0 code=0 id=23761 packets=2 bytes=168 delta-time=1 id=2737866359 [USERSPACE] portid=23770',
  tcp6IngressFlushed: '[1795306109.595308]\t[DESTROY] ipv6     10 tcp      6 119 TIME_WAIT src=fd77::2 dst=fd77::1 sport=44742 dport=7003 packets=5 bytes=375 src=fd77::1 dst=fd77::2 sport=7003 dport=44742 packets=3 bytes=224 [ASSURED] delta-time=0 id=2739720542 [USERSPACE] portid=23770',
  tcpIngressFlushed: '[1795306109.595330]\t[DESTROY] ipv4     2 tcp      6 117 TIME_WAIT src=10.77.0.2 dst=10.77.0.1 sport=57926 dport=7000 packets=5 bytes=278 src=10.77.0.1 dst=10.77.0.2 sport=7000 dport=57926 packets=3 bytes=164 [ASSURED] delta-time=3 id=2609621952 [USERSPACE] portid=23770',
  tcpRefusedNew: '[1795306118.992243]\t    [NEW] ipv4     2 tcp      6 120 SYN_SENT src=10.77.0.2 dst=10.77.0.1 sport=58620 dport=8000 [UNREPLIED] src=10.77.0.1 dst=10.77.0.2 sport=8000 dport=58620 id=3916918229',
  tcpRefusedDestroy: '[1795306118.992313]\t[DESTROY] ipv4     2 tcp      6 120 CLOSE src=10.77.0.2 dst=10.77.0.1 sport=58620 dport=8000 packets=1 bytes=60 [UNREPLIED] src=10.77.0.1 dst=10.77.0.2 sport=8000 dport=58620 packets=1 bytes=40 delta-time=0 id=3916918229',
  udpShortTimeoutNew: '[1795306119.203354]\t    [NEW] ipv4     2 udp      17 1 src=10.77.0.1 dst=10.77.0.2 sport=49933 dport=7001 [UNREPLIED] src=10.77.0.2 dst=10.77.0.1 sport=7001 dport=49933 id=964288347',
  icmpShortTimeoutNew: '[1795306120.210169]\t    [NEW] ipv4     2 icmp     1 1 src=10.77.0.2 dst=10.77.0.1 type=8 code=0 id=23981 [UNREPLIED] src=10.77.0.1 dst=10.77.0.2 type=0 code=0 id=23981 id=2909461535',
  tcpDnatNew: '[1795306135.765803]\t    [NEW] ipv4     2 tcp      6 120 SYN_SENT src=10.77.0.2 dst=10.77.0.1 sport=46914 dport=8000 [UNREPLIED] src=10.77.0.1 dst=10.77.0.2 sport=7000 dport=46914 id=3688650011',
  icmpExpired: '[1795306141.563762]\t[DESTROY] ipv4     2 icmp     1 src=10.77.0.2 dst=10.77.0.1 type=8 code=0 id=23981 packets=1 bytes=84 src=10.77.0.1 dst=10.77.0.2 type=0 code=0 id=23981 packets=1 bytes=84 delta-time=1 id=2909461535',
  udpExpired: '[1795306141.568344]\t[DESTROY] ipv4     2 udp      17 src=10.77.0.1 dst=10.77.0.2 sport=49933 dport=7001 packets=1 bytes=32 [UNREPLIED] src=10.77.0.2 dst=10.77.0.1 sport=7001 dport=49933 packets=0 bytes=0 delta-time=1 id=964288347',
} as const;

/** One namespace on loopback: ICMP, ICMPv6, a TCP connection through its states, UDP; flushed with `conntrack -F`. */
export const loopback: readonly string[] = [
  '[1795305782.993201]\t    [NEW] ipv4     2 icmp     1 30 src=127.0.0.1 dst=127.0.0.1 type=8 code=0 id=17253 [UNREPLIED] src=127.0.0.1 dst=127.0.0.1 type=0 code=0 id=17253 id=3182710441',
  '[1795305782.993267]\t [UPDATE] ipv4     2 icmp     1 30 src=127.0.0.1 dst=127.0.0.1 type=8 code=0 id=17253 src=127.0.0.1 dst=127.0.0.1 type=0 code=0 id=17253 id=3182710441',
  '[1795305783.197854]\t    [NEW] ipv6     10 icmpv6   58 30 src=::1 dst=::1 type=128 code=0 id=17254 [UNREPLIED] src=::1 dst=::1 type=129 code=0 id=17254 id=2802286902',
  '[1795305783.197892]\t [UPDATE] ipv6     10 icmpv6   58 30 src=::1 dst=::1 type=128 code=0 id=17254 src=::1 dst=::1 type=129 code=0 id=17254 id=2802286902',
  '[1795305783.505226]\t    [NEW] ipv4     2 tcp      6 120 SYN_SENT src=127.0.0.1 dst=127.0.0.1 sport=47986 dport=5000 [UNREPLIED] src=127.0.0.1 dst=127.0.0.1 sport=5000 dport=47986 id=529253858',
  '[1795305783.505252]\t [UPDATE] ipv4     2 tcp      6 60 SYN_RECV src=127.0.0.1 dst=127.0.0.1 sport=47986 dport=5000 src=127.0.0.1 dst=127.0.0.1 sport=5000 dport=47986 id=529253858',
  '[1795305783.505256]\t [UPDATE] ipv4     2 tcp      6 432000 ESTABLISHED src=127.0.0.1 dst=127.0.0.1 sport=47986 dport=5000 src=127.0.0.1 dst=127.0.0.1 sport=5000 dport=47986 [ASSURED] id=529253858',
  '[1795305783.505323]\t [UPDATE] ipv4     2 tcp      6 120 FIN_WAIT src=127.0.0.1 dst=127.0.0.1 sport=47986 dport=5000 src=127.0.0.1 dst=127.0.0.1 sport=5000 dport=47986 [ASSURED] id=529253858',
  '[1795305783.505370]\t [UPDATE] ipv4     2 tcp      6 30 LAST_ACK src=127.0.0.1 dst=127.0.0.1 sport=47986 dport=5000 src=127.0.0.1 dst=127.0.0.1 sport=5000 dport=47986 [ASSURED] id=529253858',
  '[1795305783.505376]\t [UPDATE] ipv4     2 tcp      6 120 TIME_WAIT src=127.0.0.1 dst=127.0.0.1 sport=47986 dport=5000 src=127.0.0.1 dst=127.0.0.1 sport=5000 dport=47986 [ASSURED] id=529253858',
  '[1795305783.810184]\t    [NEW] ipv4     2 udp      17 30 src=127.0.0.1 dst=127.0.0.1 sport=53761 dport=5001 [UNREPLIED] src=127.0.0.1 dst=127.0.0.1 sport=5001 dport=53761 id=1342167858',
  '[1795305783.823109]\t[DESTROY] ipv4     2 icmp     1 29 src=127.0.0.1 dst=127.0.0.1 type=8 code=0 id=17253 packets=2 bytes=168 src=127.0.0.1 dst=127.0.0.1 type=0 code=0 id=17253 packets=2 bytes=168 id=3182710441 [USERSPACE] portid=17264 progname=conntrack',
  '[1795305783.825104]\t[DESTROY] ipv6     10 icmpv6   58 29 src=::1 dst=::1 type=128 code=0 id=17254 packets=1 bytes=104 src=::1 dst=::1 type=129 code=0 id=17254 packets=1 bytes=104 id=2802286902 [USERSPACE] portid=17264',
  '[1795305783.825182]\t[DESTROY] ipv4     2 udp      17 29 src=127.0.0.1 dst=127.0.0.1 sport=53761 dport=5001 packets=1 bytes=31 [UNREPLIED] src=127.0.0.1 dst=127.0.0.1 sport=5001 dport=53761 packets=0 bytes=0 id=1342167858 [USERSPACE] portid=17264',
  '[1795305783.825281]\t[DESTROY] ipv4     2 tcp      6 119 TIME_WAIT src=127.0.0.1 dst=127.0.0.1 sport=47986 dport=5000 packets=5 bytes=274 src=127.0.0.1 dst=127.0.0.1 sport=5000 dport=47986 packets=3 bytes=164 [ASSURED] id=529253858 [USERSPACE] portid=17264',
];
