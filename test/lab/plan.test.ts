// The planner is pure: these run everywhere (no root needed).
import { describe, expect, it } from 'vitest';
import { blackholeRuleset, lossRuleset, natRuleset, planLab, planToShell, publicAddressOf } from '../../src/lab/plan.js';
import { validateSpec, type LabSpec } from '../../src/lab/spec.js';

const SPEC: LabSpec = {
  routers: [{ name: 'cg', nat: 'eim' }, { name: 'home', nat: 'symmetric', upstream: 'cg', wan: { lossPct: 5 } }],
  hosts: [
    { name: 'relay', attach: 'internet', link: { delayMs: 10, jitterMs: 1 } },
    { name: 'h1', attach: 'home' },
    { name: 'h2', attach: 'home', link: { rateMbit: 100 } },
  ],
};

describe('lab planner', () => {
  const plan = planLab(SPEC, 'mlab1x1-');

  it('gives addresses from the test ranges only, as documented', () => {
    expect(plan.nodes.get('cg')!.address).toBe('198.18.1.2');
    expect(plan.nodes.get('relay')!.address).toBe('198.18.2.2');
    expect(plan.nodes.get('cg')!.lanAddress).toBe('100.64.1.1'); // carrier LAN
    expect(plan.nodes.get('home')!.address).toBe('100.64.1.10');
    expect(plan.nodes.get('home')!.lanAddress).toBe('10.2.0.1'); // home LAN
    expect(plan.nodes.get('h1')!.address).toBe('10.2.0.10');
    expect(plan.nodes.get('h2')!.address).toBe('10.2.0.11');
    for (const l of plan.links) for (const a of [l.childAddr, l.parentAddr]) expect(a).toMatch(/^(198\.18\.|100\.64\.|10\.)/);
  });

  it('public address of a host behind two NATs is the outermost NAT\'s', () => {
    expect(publicAddressOf(plan, SPEC, 'h1')).toBe('198.18.1.2');
    expect(publicAddressOf(plan, SPEC, 'relay')).toBe('198.18.2.2');
  });

  it('every namespace carries the prefix; a delayed link gets a middle namespace and a bridge', () => {
    expect(plan.namespaces.every((n) => n.startsWith('mlab1x1-'))).toBe(true);
    const relayLink = plan.links.find((l) => l.child === 'relay')!;
    expect(relayLink.midNs).toBe(`mlab1x1-0d${relayLink.id}`);
    expect(plan.bridges).toEqual([{ ns: relayLink.midNs, a: 'a', b: 'b', delayUs: 10_000, jitterUs: 1000, seed: relayLink.id }]);
    // checksum offload off on both real ends of the bridged link
    const eth = plan.steps.filter((s) => s.argv.includes('ethtool')).map((s) => s.argv.join(' '));
    expect(eth).toEqual([`ip netns exec mlab1x1-relay ethtool -K eth0 tx off`, `ip netns exec mlab1x1-0inet ethtool -K ${relayLink.parentIf} tx off`]);
  });

  it('loss goes on the ingress of both ends; rate by tbf on both ends', () => {
    const loss = plan.steps.filter((s) => s.stdin?.includes('numgen'));
    expect(loss.map((s) => s.argv[3])).toEqual(['mlab1x1-home', 'mlab1x1-cg']);
    expect(loss[0]!.stdin).toContain('device "wan"');
    expect(loss[1]!.stdin).toContain('device "p0"');
    expect(plan.steps.filter((s) => s.argv.includes('tbf'))).toHaveLength(2);
  });

  it('NAT rule sets per kind', () => {
    expect(natRuleset('eim')).toMatch(/oifname "wan" masquerade\n/);
    expect(natRuleset('symmetric')).toContain('masquerade fully-random');
    expect(natRuleset('udp-blocked')).toContain('meta l4proto udp counter drop');
    expect(natRuleset('eim')).not.toContain('udp');
    for (const k of ['eim', 'symmetric', 'udp-blocked'] as const) {
      expect(natRuleset(k)).toContain('hook input');
      expect(natRuleset(k)).toContain('iifname "wan" counter drop');
    }
    expect(lossRuleset('eth0', 7)).toContain('numgen random mod 100 < 7 counter drop');
    expect(blackholeRuleset('bh', '198.18.1.2', '198.18.2.2')).toContain('ip saddr 198.18.2.2 ip daddr 198.18.1.2 counter drop');
  });

  it('renders as a shell script with heredocs for rule sets', () => {
    const sh = planToShell(plan);
    expect(sh).toContain('ip netns add mlab1x1-0inet\n');
    expect(sh).toContain("nft -f - <<'EOF'\ntable ip lab_nat {");
  });

  it('rejects bad descriptions and prefixes', () => {
    expect(validateSpec({ routers: [{ name: 'r', nat: 'eim', upstream: 's' }, { name: 's', nat: 'eim', upstream: 'r' }], hosts: [] }).join()).toMatch(/cycle/);
    expect(validateSpec({ routers: [], hosts: [{ name: 'h', attach: 'nowhere' }] }).join()).toMatch(/unknown attachment/);
    expect(validateSpec({ routers: [], hosts: [{ name: 'h', attach: 'internet' }, { name: 'h', attach: 'internet' }] }).join()).toMatch(/twice/);
    expect(validateSpec({ routers: [], hosts: [{ name: 'Bad_Name', attach: 'internet' }] }).join()).toMatch(/must match/);
    expect(validateSpec({ routers: [], hosts: [{ name: 'h', attach: 'internet', link: { lossPct: 2.5 } }] }).join()).toMatch(/lossPct/);
    expect(validateSpec({ routers: [], hosts: [{ name: 'h', attach: 'internet', link: { delayMs: -1 } }] }).join()).toMatch(/delayMs/);
    expect(() => planLab({ routers: [], hosts: [{ name: 'h', attach: 'x' }] }, 'p-')).toThrow(/invalid lab description/);
    expect(() => planLab(SPEC, 'Bad Prefix')).toThrow(/prefix/);
  });
});
