/**
 * How a pool picks a member for a new session. Runs once per session, at open (never per
 * datagram), over the members that take sessions now. Weights are positive integers.
 */
export type BalanceAlgorithm = 'round-robin' | 'least-conn' | 'p2c' | 'source-hash';

/** What a balancer reads of a member. */
export interface Candidate {
  readonly key: string;
  readonly weight: number;
  /** Live sessions or connections on it now. */
  readonly active: number;
}

export interface Balancer {
  /** One of `candidates` (never empty) for a session of `client` (its canonical address). */
  pick<C extends Candidate>(candidates: readonly C[], client: string): C;
}

/**
 * Smooth weighted round-robin (as nginx's upstream module): every pick adds each weight to its
 * member's credit, takes the largest credit and charges it the total. Weights 5,1,1 give
 * a a b a c a a, not a a a a a b c.
 */
export class RoundRobinBalancer implements Balancer {
  readonly #credit = new Map<string, number>();

  pick<C extends Candidate>(candidates: readonly C[]): C {
    let best = candidates[0]!;
    let bestCredit = -Infinity;
    let total = 0;
    for (const c of candidates) {
      const credit = (this.#credit.get(c.key) ?? 0) + c.weight;
      this.#credit.set(c.key, credit);
      total += c.weight;
      if (credit > bestCredit) {
        best = c;
        bestCredit = credit;
      }
    }
    this.#credit.set(best.key, bestCredit - total);
    if (this.#credit.size > candidates.length * 4) this.#forgetOthers(candidates);
    return best;
  }

  /** Members gone by a reload leave no credit behind. */
  #forgetOthers(candidates: readonly Candidate[]): void {
    const keep = new Set(candidates.map((c) => c.key));
    for (const k of this.#credit.keys()) if (!keep.has(k)) this.#credit.delete(k);
  }
}

/**
 * Least connections (least sessions for UDP), weighted: the lowest active/weight; ties go round
 * the members in turn, so an idle pool still spreads.
 */
export class LeastConnBalancer implements Balancer {
  #turn = 0;

  /** No allocation: one pass for the lowest load and its ties, a second to take the turn's tie. */
  pick<C extends Candidate>(candidates: readonly C[]): C {
    let low = Infinity;
    let ties = 0;
    for (const c of candidates) {
      const load = c.active / c.weight;
      if (load < low) {
        low = load;
        ties = 1;
      } else if (load === low) ties++;
    }
    let k = ties === 1 ? 0 : this.#turn++ % ties;
    if (this.#turn > 1e9) this.#turn = 0;
    for (const c of candidates) if (c.active / c.weight === low && k-- === 0) return c;
    return candidates[0]!;
  }
}

/**
 * Power of two choices: two members drawn at random in proportion to weight, the less loaded
 * (active/weight) one wins. Nearly as even as least-conn without reading every member's count,
 * and no herd on the emptiest member when several gateways pick at once.
 */
export class TwoChoicesBalancer implements Balancer {
  constructor(private readonly random: () => number = Math.random) {}

  pick<C extends Candidate>(candidates: readonly C[]): C {
    if (candidates.length === 1) return candidates[0]!;
    const a = this.#draw(candidates, undefined);
    const b = this.#draw(candidates, a);
    return b.active / b.weight < a.active / a.weight ? b : a;
  }

  #draw<C extends Candidate>(candidates: readonly C[], not: C | undefined): C {
    let total = 0;
    for (const c of candidates) if (c !== not) total += c.weight;
    let r = this.random() * total;
    for (const c of candidates) {
      if (c === not) continue;
      r -= c.weight;
      if (r < 0) return c;
    }
    return candidates.find((c) => c !== not)!;
  }
}

/**
 * Consistent source hash: weighted rendezvous hashing (HRW). Each member scores
 * weight / -ln(u), u a hash of (client address, member key) in (0, 1); the highest wins. The
 * choice depends only on the client's address and the members' keys and weights: the same on
 * every gateway and after a reload, and a member that leaves moves only its own clients.
 */
export class SourceHashBalancer implements Balancer {
  pick<C extends Candidate>(candidates: readonly C[], client: string): C {
    let best = candidates[0]!;
    let bestScore = -Infinity;
    for (const c of candidates) {
      const score = hrwScore(client, c.key, c.weight);
      if (score > bestScore) {
        best = c;
        bestScore = score;
      }
    }
    return best;
  }
}

/** The weighted rendezvous score of `member` for `client` (exported for golden tests). */
export function hrwScore(client: string, member: string, weight: number): number {
  const h = hash32(client, member);
  const u = (h + 0.5) / 4294967296;
  return weight / -Math.log(u);
}

/**
 * FNV-1a over `a`, a separator and `b`, then MurmurHash3's 32-bit finaliser so nearby inputs
 * spread over the whole range. Stable across processes and versions: part of the fleet's contract.
 */
export function hash32(a: string, b: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < a.length; i++) h = Math.imul(h ^ a.charCodeAt(i), 0x01000193);
  h = Math.imul(h ^ 0x7c, 0x01000193); // '|'
  for (let i = 0; i < b.length; i++) h = Math.imul(h ^ b.charCodeAt(i), 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export function makeBalancer(algorithm: BalanceAlgorithm, random?: () => number): Balancer {
  switch (algorithm) {
    case 'round-robin':
      return new RoundRobinBalancer();
    case 'least-conn':
      return new LeastConnBalancer();
    case 'p2c':
      return new TwoChoicesBalancer(random);
    case 'source-hash':
      return new SourceHashBalancer();
  }
}
