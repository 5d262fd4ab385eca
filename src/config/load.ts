import { readFile } from 'node:fs/promises';
import { isMap, isNode, LineCounter, parseDocument, type Document } from 'yaml';
import { parseListenSpan } from './port-span.js';
import { checkListenOverlaps } from './listen-overlap.js';
import { checkRouteMatches } from './route-match.js';
import { checkRouteRanges } from './route-ranges.js';
import { checkPools, compilePool, isPooled } from './pool-schema.js';
import { SluiceError } from '../core/errors.js';
import { configSchema, type RawConfig } from './schema.js';
import { checkObserve, compileObserve } from './observe-schema.js';
import type { ConfigIssue, RouteConfig, SluiceConfig } from './types.js';
import { aclSpecIssues, type AclSpec } from '../core/acl-spec.js';
import { parseCidr } from '../core/cidr.js';
import { normaliseLapiUrl } from './crowdsec-settings.js';
import type { BansSettings } from './bans-settings.js';
import { checkExpose, compileAgent, compileGateway, replyBudgetOf, type RawAgent, type RawGateway } from './gateway-schema.js';
import { DEFAULT_REPLY_BUDGET } from '../core/reply-budget.js';
import { compileDocker } from './docker-config.js';
import { configIssueText, unknownKeyText } from './issue-text.js';
import { yamlProblems } from './yaml-problems.js';

export type ParseResult = { ok: true; config: SluiceConfig } | { ok: false; issues: ConfigIssue[] };

/**
 * Parses and validates config text. Collects every problem it can find rather than stopping at
 * the first, each with its key path and line. The result is deeply frozen: the running node
 * swaps whole configs, it never edits one.
 */
export function parseConfig(text: string): ParseResult {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false });
  const lineOf = (offset: number | undefined) => (offset === undefined ? undefined : lines.linePos(offset).line);

  if (doc.errors.length > 0) return { ok: false, issues: yamlProblems(doc.errors, text, lines) };
  const raw: unknown = doc.toJS() ?? {};
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    return { ok: false, issues: [{ path: '', line: 1, message: 'expected a map of keys (routes:, ...); the file holds a single value or a list' }] };
  }

  const issues: ConfigIssue[] = [];
  const at = (path: (string | number)[], message: string) =>
    issues.push({ path: path.join('.'), line: lineOf(nodeOffset(doc, path)), message });

  const parsed = configSchema.safeParse(raw, { error: configIssueText });
  if (!parsed.success) {
    // A misspelt key also makes the key it stands for missing: say it once, at the typo.
    const meant = new Set<string>();
    const pathOf = (issue: { path: PropertyKey[] }) => issue.path.map((p) => (typeof p === 'number' ? p : String(p)));
    for (const issue of parsed.error.issues) {
      if (issue.code !== 'unrecognized_keys') continue;
      for (const key of issue.keys) {
        const { message, suggestion } = unknownKeyText(configSchema, issue.path, key);
        at([...pathOf(issue), key], message);
        if (suggestion) meant.add([...pathOf(issue), suggestion].join('.'));
      }
    }
    for (const issue of parsed.error.issues) {
      if (issue.code === 'unrecognized_keys') continue;
      const path = pathOf(issue);
      if (issue.message === 'is required' && meant.has(path.join('.'))) continue;
      at(path, issue.message);
    }
  }
  const routesRaw = (raw as { routes?: Record<string, Record<string, unknown>> }).routes;
  if (routesRaw && typeof routesRaw === 'object' && !Array.isArray(routesRaw)) checkRoutes(routesRaw, at);
  checkListenOverlaps(raw as Record<string, unknown>, at, (path) => lineOf(nodeOffset(doc, path)));
  if (parsed.success) checkRouteRanges(parsed.data.routes, at);
  if (parsed.success) checkPools(parsed.data.routes, at);
  if (routesRaw && typeof routesRaw === 'object' && !Array.isArray(routesRaw)) checkRouteMatches(routesRaw, at, (path) => lineOf(nodeOffset(doc, path)));
  if (parsed.success) checkAdmission(parsed.data, at);
  if (parsed.success) checkObserve(parsed.data, at);
  if (parsed.success) checkExpose(parsed.data as { gateway?: RawGateway; agent?: RawAgent }, at);

  if (issues.length > 0 || !parsed.success) {
    issues.sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
    return { ok: false, issues };
  }
  return { ok: true, config: compile(parsed.data) };
}

/** Reads and parses a file; a read failure is an issue too, so `check` reports it the same way. */
export async function loadConfigFile(path: string): Promise<ParseResult> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
    return { ok: false, issues: [{ path: '', message: `cannot read config file ${path}: ${code}` }] };
  }
  return parseConfig(text);
}

export function expectConfig(result: ParseResult): SluiceConfig {
  if (result.ok) return result.config;
  throw new SluiceError('SLUICE_ERR_CONFIG_INVALID', `config has ${result.issues.length} problem(s)`, { cause: result.issues });
}

const ROUTE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

/** Checks across keys that a per-field schema cannot see. */
function checkRoutes(routesRaw: Record<string, Record<string, unknown>>, at: (path: (string | number)[], message: string) => void): void {
  for (const [name, route] of Object.entries(routesRaw)) {
    if (!ROUTE_NAME.test(name)) at(['routes', name], 'route names use letters, digits, _ . - (at most 63, starting with a letter or digit)');
    if (!route || typeof route !== 'object') continue;
    const span = typeof route.listen === 'string' ? parseListenSpan(route.listen) : undefined;
    if (!span || typeof span === 'string') continue;
    const { listen } = span;
    if (listen.transport === 'tcp' && route.udp !== undefined) at(['routes', name, 'udp'], 'udp settings on a tcp:// route');
    if (listen.transport === 'udp' && route.tcp !== undefined) at(['routes', name, 'tcp'], 'tcp settings on a udp:// route');
  }
}

/** ACL and PROXY protocol rules, checked by the modules that own them. */
function checkAdmission(data: RawConfig, at: (path: (string | number)[], message: string) => void): void {
  const hasGeo = data.geoip !== undefined;
  const aclAt = (prefix: (string | number)[], spec: AclSpec) => {
    for (const issue of aclSpecIssues(spec, hasGeo)) at([...prefix, ...splitPath(issue.path)], issue.message);
    if (spec.crowdsec && !data.crowdsec) at([...prefix, 'crowdsec'], 'needs the top-level crowdsec: section (url, apiKey)');
  };
  if (data.acl) aclAt(['acl'], data.acl);
  const servicesAcl = (data.gateway as { services?: { acl?: AclSpec } } | undefined)?.services?.acl;
  if (servicesAcl?.crowdsec && !data.crowdsec) at(['gateway', 'services', 'acl', 'crowdsec'], 'needs the top-level crowdsec: section (url, apiKey)');
  const ruleNames = new Set(Object.keys(data.bans?.rules ?? {}));
  const rulesAt = (path: (string | number)[], names: readonly string[] | undefined) =>
    names?.forEach((n, i) => {
      if (!ruleNames.has(n)) at([...path, i], `no ban rule "${n}" in bans.rules${ruleNames.size ? ` (known: ${[...ruleNames].join(', ')})` : ''}`);
    });
  rulesAt(['bans', 'default'], data.bans?.default);
  rulesAt(['gateway', 'bans'], (data.gateway as { bans?: string[] } | undefined)?.bans);
  data.bans?.allow.forEach((text, i) => {
    const c = parseCidr(text);
    if (typeof c === 'string') at(['bans', 'allow', i], c);
  });
  for (const [name, r] of Object.entries(data.routes)) {
    rulesAt(['routes', name, 'bans'], r.bans);
    if (r.acl) aclAt(['routes', name, 'acl'], r.acl);
    const pp = r.proxyProtocol;
    if (!pp) continue;
    pp.accept.forEach((text, i) => {
      const c = parseCidr(text);
      if (typeof c === 'string') at(['routes', name, 'proxyProtocol', 'accept', i], c);
    });
    if (pp.send === 'v1' && r.listen.listen.transport === 'udp') at(['routes', name, 'proxyProtocol', 'send'], 'v1 is TCP only; use v2 on a udp:// route');
  }
}

/** `countries.deny[0]` -> ['countries', 'deny', 0] */
function splitPath(path: string): (string | number)[] {
  return path.split(/[.[\]]/).filter((p) => p !== '').map((p) => (/^\d+$/.test(p) ? Number(p) : p));
}

function compile(data: RawConfig): SluiceConfig {
  const routes: RouteConfig[] = Object.entries(data.routes).map(([name, r]) => ({
    name,
    listen: r.listen.listen,
    upstream: r.upstream.upstream,
    ...(r.listen.ports ? { ports: r.listen.ports } : {}),
    ...(r.upstream.ports ? { upstreamRange: true } : {}),
    udp: {
      idleTimeoutMs: r.udp.idleTimeout,
      maxSessions: r.udp.maxSessions,
      maxSessionsPerSource: r.udp.maxSessionsPerSource,
      rate: r.udp.rate,
      ratePerSource: r.udp.ratePerSource,
      onLimit: r.udp.onLimit,
      setupQueue: r.udp.setupQueue,
      maxDatagramBytes: r.udp.maxDatagramBytes,
      replyBudget: replyBudgetOf(r.udp.replyBudget, DEFAULT_REPLY_BUDGET),
      ...(r.udp.isolateAbove ? { isolateAbove: r.udp.isolateAbove } : {}),
    },
    tcp: {
      connectTimeoutMs: r.tcp.connectTimeout,
      idleTimeoutMs: r.tcp.idleTimeout,
      maxConnections: r.tcp.maxConnections,
      maxConnectionsPerSource: r.tcp.maxConnectionsPerSource,
      rate: r.tcp.rate,
      ratePerSource: r.tcp.ratePerSource,
    },
    acl: r.acl ?? data.acl,
    ...((r.bans ?? data.bans?.default) ? { bans: r.bans ?? data.bans?.default } : {}),
    ...((r.sourcePrefix ?? data.sourcePrefix) ? { sourcePrefix: r.sourcePrefix ?? data.sourcePrefix } : {}),
    ...(r.bandwidth ? { bandwidth: r.bandwidth } : {}),
    ...(r.match ? { match: r.match } : {}),
    ...(isPooled(r) ? { pool: compilePool(r)! } : {}),
    proxyProtocol: r.proxyProtocol && {
      accept: r.proxyProtocol.accept,
      send: r.proxyProtocol.send,
      udp: r.proxyProtocol.udp,
      headerTimeoutMs: r.proxyProtocol.headerTimeout,
      untrustedWaitMs: r.proxyProtocol.untrustedWait,
      maxHeaderBytes: r.proxyProtocol.maxHeaderBytes,
    },
  }));
  return deepFreeze({
    routes,
    geoip: data.geoip,
    ...(data.crowdsec
      ? {
          crowdsec: {
            url: normaliseLapiUrl(data.crowdsec.url),
            apiKey: data.crowdsec.apiKey,
            mode: data.crowdsec.mode,
            onUnavailable: data.crowdsec.onUnavailable,
            intervalMs: data.crowdsec.interval,
            timeoutMs: data.crowdsec.timeout,
            ...(data.crowdsec.banPrefix ? { banPrefix: data.crowdsec.banPrefix } : {}),
          },
        }
      : {}),
    ...(data.bans ? { bans: compileBans(data.bans, data.gateway?.stateDir) } : {}),
    accessLog: data.accessLog,
    log: data.log,
    lifecycle: { drainTimeoutMs: data.lifecycle.drainTimeout, watch: data.lifecycle.watch },
    datapath: data.datapath,
    congestion: data.congestion,
    scheduler: data.scheduler,
    ...(data.gateway ? { gateway: compileGateway(data.gateway as RawGateway, data.acl, data.sourcePrefix) } : {}),
    ...(data.agent ? { agent: compileAgent(data.agent as RawAgent) } : {}),
    ...(data.docker ? { docker: compileDocker(data.docker) } : {}),
    ...(data.acl ? { acl: data.acl } : {}),
    ...(data.sourcePrefix ? { sourcePrefix: data.sourcePrefix } : {}),
    ...compileObserve(data),
  });
}

function compileBans(b: NonNullable<RawConfig['bans']>, gatewayStateDir: string | undefined): BansSettings {
  return {
    rules: Object.entries(b.rules).map(([name, r]) => ({
      name,
      ...(r.when.newSessionsPer ? { newSessionsPer: { count: r.when.newSessionsPer.count, windowMs: r.when.newSessionsPer.window } } : {}),
      ...(r.when.rejectionsPer ? { rejectionsPer: { count: r.when.rejectionsPer.count, windowMs: r.when.rejectionsPer.window } } : {}),
      ...(r.when.bytesPer ? { bytesPer: { bytes: r.when.bytesPer.bytes, windowMs: r.when.bytesPer.window } } : {}),
      banMs: r.ban,
      escalate: r.escalate,
      maxBanMs: Math.max(r.maxBan, r.ban),
      scope: r.scope,
      mode: r.mode,
    })),
    allow: b.allow,
    default: b.default,
    // The gateway's state directory when there is one, so one directory holds all of Sluice's state.
    stateDir: b.stateDir ?? gatewayStateDir ?? 'sluice-state',
    maxTracked: b.maxTracked,
  };
}

/** Offset of the node at `path`, or of its nearest existing parent (for a missing key). */
function nodeOffset(doc: Document, path: (string | number)[]): number | undefined {
  for (let n = path.length; n >= 0; n--) {
    const node = doc.getIn(path.slice(0, n), true);
    if (isNode(node) && node.range) {
      // A map's own range starts at its first entry; people look for the line of its key.
      if (isMap(node) && n > 0) return keyOffset(doc, path.slice(0, n)) ?? node.range[0];
      return node.range[0];
    }
  }
  return undefined;
}

function keyOffset(doc: Document, path: (string | number)[]): number | undefined {
  const parent = doc.getIn(path.slice(0, -1), true);
  if (!isMap(parent)) return undefined;
  const pair = parent.items.find((p) => isNode(p.key) && (p.key as { value?: unknown }).value === path[path.length - 1]);
  const key = pair?.key;
  return isNode(key) && key.range ? key.range[0] : undefined;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
