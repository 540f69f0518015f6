// The lab's nftables rule sets and miniupnpd configuration as text (no root needed);
// that they behave as named on the kernel is topology.test.ts / nat-kinds.test.ts.
import { describe, expect, it } from 'vitest';
import { blackholeRuleset, firewall6Ruleset, lossRuleset, natRuleset, upnpRuleset } from '../../src/lab/rulesets.js';
import { MINIUPNPD_READY_RE, miniupnpdArgv, miniupnpdConfig } from '../../src/lab/miniupnpd.js';

const WAN = '198.18.1.2';

describe('NAT rule sets', () => {
  it('mapping per kind: masquerade of what the LAN sends out of the WAN, fully random when symmetric', () => {
    for (const nat of ['port-restricted', 'address-restricted', 'udp-blocked'] as const) {
      expect(natRuleset({ nat, wanAddress: WAN })).toContain('    iifname "lan" oifname "wan" masquerade\n');
    }
    expect(natRuleset({ nat: 'symmetric', wanAddress: WAN })).toContain('    iifname "lan" oifname "wan" masquerade fully-random\n');
  });

  it('filtering: new inbound on the WAN dropped (forward and input) for every kind; udp-blocked drops UDP', () => {
    for (const nat of ['port-restricted', 'address-restricted', 'symmetric', 'udp-blocked'] as const) {
      const r = natRuleset({ nat, wanAddress: WAN });
      expect(r).toContain('hook input');
      expect(r.match(/iifname "wan" ct state established,related accept\n {4}(iifname "wan" ct status dnat accept\n {4})?iifname "wan" counter drop/g)).toHaveLength(2);
    }
    expect(natRuleset({ nat: 'udp-blocked', wanAddress: WAN })).toContain('meta l4proto udp counter drop');
  });

  it('port-restricted is plain conntrack: no mapping memory, no DNAT, nothing let in beyond established', () => {
    const r = natRuleset({ nat: 'port-restricted', wanAddress: WAN });
    for (const s of ['map ', 'set ', 'dnat', 'update', 'udp', 'ct timeout']) expect(r).not.toContain(s);
  });

  it('address-restricted: remembers mappings and contacted addresses, DNATs a contacted address to any mapped port', () => {
    const r = natRuleset({ nat: 'address-restricted', wanAddress: WAN });
    expect(r).toContain('map mapped_udp { type inet_service : ipv4_addr . inet_service; flags dynamic, timeout; timeout 120s; }');
    expect(r).toContain('set contacted { type ipv4_addr . inet_service; flags dynamic, timeout; timeout 120s; }');
    expect(r).toContain('iifname "wan" ip saddr . udp dport @contacted dnat ip to udp dport map @mapped_udp');
    // recorded after the masquerade chose the public port (srcnat + 10), from the conntrack tuple
    expect(r).toMatch(/chain record_mappings \{\n {4}type filter hook postrouting priority srcnat \+ 10;/);
    expect(r).toContain('update @mapped_udp { ct reply proto-dst : ct original ip saddr . ct original proto-src }');
    expect(r).toContain('update @contacted { ip daddr . ct reply proto-dst }');
    expect(r).toContain('iifname "wan" ct status dnat accept');
  });

  it('hairpin: LAN → own public address DNATed to the mapping owner, source NATed to the sender\'s own mapping', () => {
    const r = natRuleset({ nat: 'port-restricted', wanAddress: WAN, hairpin: true });
    expect(r).toContain(`iifname "lan" ip daddr ${WAN} dnat ip to udp dport map @mapped_udp`);
    // the kernel gives the sender's existing mapping (topology-kinds.test.ts proves it)
    expect(r).toContain(`iifname "lan" oifname "lan" ct status dnat snat ip to ${WAN}\n`);
    expect(r).toContain('update @mapped_udp { ct reply proto-dst : ct original ip saddr . ct original proto-src }');
    // hairpinning lets nothing more in from the WAN
    expect(r).not.toContain('contacted');
    expect(r).not.toContain('ct status dnat accept');
  });

  it('idle timeout: a ct timeout policy for UDP attached to new entries; the mapping memory lives as long', () => {
    const r = natRuleset({ nat: 'address-restricted', wanAddress: WAN, udpIdleTimeoutSec: 30 });
    expect(r).toContain('ct timeout udp_idle { protocol udp; l3proto ip; policy = { unreplied: 30, replied: 30 }; }');
    expect(r).toContain('meta l4proto udp ct state new ct timeout set "udp_idle"');
    expect(r).toContain('flags dynamic, timeout; timeout 30s;');
    expect(natRuleset({ nat: 'port-restricted', wanAddress: WAN })).not.toContain('udp_idle');
  });

  it('port mapping: miniupnpd\'s pinholes pass the router\'s forward filter', () => {
    expect(natRuleset({ nat: 'symmetric', wanAddress: WAN, portMapping: true })).toContain('iifname "wan" ct status dnat accept');
    expect(natRuleset({ nat: 'symmetric', wanAddress: WAN })).not.toContain('ct status dnat accept');
  });
});

describe('IPv6 firewall, miniupnpd tables, loss, blackhole', () => {
  it('IPv6: established/related in, new inbound on the WAN dropped, neighbour discovery to the router allowed; no NAT', () => {
    const r = firewall6Ruleset();
    expect(r).toMatch(/^table ip6 lab_fw6 \{/);
    expect(r.match(/iifname "wan" ct state established,related accept/g)).toHaveLength(2);
    expect(r.match(/iifname "wan" counter drop/g)).toHaveLength(2);
    expect(r).toContain('iifname "wan" icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept');
    expect(r.indexOf('nd-neighbor-solicit')).toBeGreaterThan(r.indexOf('hook input'));
    for (const s of ['nat', 'masquerade', 'udp_idle']) expect(r).not.toContain(s);
    expect(firewall6Ruleset({ udpIdleTimeoutSec: 5 })).toContain('ct timeout udp_idle { protocol udp; l3proto ip6; policy = { unreplied: 5, replied: 5 }; }');
  });

  it('miniupnpd tables: its three chains, hooked just before the router\'s own; unaccepted DNAT dropped', () => {
    const r = upnpRuleset();
    expect(r).toMatch(/^table inet lab_upnp \{/);
    for (const c of ['miniupnpd', 'prerouting_miniupnpd', 'postrouting_miniupnpd']) expect(r).toContain(`  chain ${c} {\n  }`);
    expect(r).toContain('type filter hook forward priority filter - 1;');
    expect(r).toContain('iifname "wan" ct state new ct status dnat jump miniupnpd\n    iifname "wan" ct state new ct status dnat counter drop');
    expect(r).toContain('type nat hook prerouting priority dstnat - 1;');
    expect(r).toContain('type nat hook postrouting priority srcnat - 1;');
  });

  it('loss and blackhole', () => {
    expect(lossRuleset('eth0', 7)).toContain('type filter hook ingress device "eth0" priority 0;');
    expect(lossRuleset('eth0', 7)).toContain('numgen random mod 100 < 7 counter drop');
    expect(blackholeRuleset('bh', '198.18.1.2', '198.18.2.2')).toContain('ip saddr 198.18.2.2 ip daddr 198.18.1.2 counter drop');
  });
});

describe('miniupnpd configuration', () => {
  const conf = miniupnpdConfig({ router: 'pm', lanSubnet: '10.2.0.0/24', stunHost: '198.18.2.1', leaseFile: '/tmp/x/pm.leases' });
  const lines = conf.split('\n');

  it('serves UPnP, NAT-PMP and PCP on the LAN bridge for the WAN, in the lab\'s tables', () => {
    for (const l of ['ext_ifname=wan', 'listening_ip=lan', 'enable_upnp=yes', 'enable_natpmp=yes', 'ipv6_disable=yes',
      'upnp_table_name=lab_upnp', 'upnp_nat_table_name=lab_upnp', 'upnp_forward_chain=miniupnpd',
      'upnp_nat_chain=prerouting_miniupnpd', 'upnp_nat_postrouting_chain=postrouting_miniupnpd', 'lease_file=/tmp/x/pm.leases']) {
      expect(lines).toContain(l);
    }
  });

  it('learns its public address from the lab\'s STUN responder; maps only for its LAN, unprivileged ports', () => {
    expect(lines).toContain('ext_perform_stun=yes');
    expect(lines).toContain('ext_stun_host=198.18.2.1');
    expect(lines).toContain('ext_stun_port=3478');
    expect(lines.filter((l) => /^(allow|deny) /.test(l))).toEqual(['allow 1024-65535 10.2.0.0/24 1024-65535', 'deny 0-65535 0.0.0.0/0 0-65535']);
    expect(lines.some((l) => l.startsWith('ext_ip='))).toBe(false);
  });

  it('runs in the foreground with its own pid file; its ready line', () => {
    expect(miniupnpdArgv('/tmp/x/pm.conf', '/tmp/x/pm.pid')).toEqual(['miniupnpd', '-d', '-f', '/tmp/x/pm.conf', '-P', '/tmp/x/pm.pid']);
    expect(MINIUPNPD_READY_RE.test('miniupnpd[3468]: Listening for NAT-PMP/PCP traffic on port 5351')).toBe(true);
    expect(MINIUPNPD_READY_RE.test('miniupnpd[3468]: HTTP listening on port 41373')).toBe(false);
  });
});
