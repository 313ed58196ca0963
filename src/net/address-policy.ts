import ipaddr from 'ipaddr.js';

/**
 * Why an IP address must not be connected to on a client's behalf, or `undefined` when it is a public unicast
 * address. Only ipaddr.js's `unicast` range passes: loopback, private (RFC 1918), link-local (169.254/16, which holds
 * the cloud metadata service 169.254.169.254, and fe80::/10), carrier-grade NAT (100.64/10), unique-local (fc00::/7),
 * multicast, broadcast, unspecified (0/8 included), reserved, benchmarking and documentation ranges are all refused. IPv4-mapped IPv6 is
 * judged by the IPv4 address it carries, IPv6 outside global unicast (2000::/3, so IPv4-compatible ::a.b.c.d too) is refused; 6to4, Teredo and NAT64 forms, which tunnel to
 * an IPv4 address the host does not see, are refused outright. Text that is not an IP address is refused too.
 *
 * @example
 * ```ts
 * refusedAddressReason('169.254.169.254'); // 'linkLocal'
 * refusedAddressReason('::ffff:7f00:1'); // 'loopback'
 * refusedAddressReason('93.184.216.34'); // undefined
 * ```
 */
export function refusedAddressReason(address: string): string | undefined {
  // Zone ids (fe80::1%eth0) name an interface: only link-local addresses carry them.
  if (address.includes('%')) return 'scoped';
  let parsed: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    // Only canonical notations: the odd IPv4 forms (octal, hex, short) are for URL parsers to normalise, and a
    // resolver that returns one is not to be trusted with an interpretation.
    if (!ipaddr.IPv4.isValidFourPartDecimal(address) && !ipaddr.IPv6.isValid(address)) return 'not-an-ip-address';
    parsed = ipaddr.process(address);
  } catch {
    return 'not-an-ip-address';
  }
  // ipaddr.js names every special-purpose block (0/8 is `unspecified`, 198.18/15 and 240/4 `reserved`), so
  // passing only `unicast` is an allowlist rather than a list of known-bad ranges that could miss one.
  const range = parsed.range();
  if (range !== 'unicast') return range;
  // Public IPv6 lives in 2000::/3; ipaddr.js calls the unassigned rest `unicast`, including the deprecated
  // IPv4-compatible ::a.b.c.d (::7f00:1 for 127.0.0.1), which some stacks still route to IPv4.
  if (parsed.kind() === 'ipv6' && !parsed.match(ipaddr.IPv6.parse('2000::'), 3)) return 'not-global-unicast';
  return undefined;
}

/**
 * The IP address a URL's hostname spells, if it spells one. WHATWG URL parsing has already turned the odd IPv4
 * notations (`2130706433`, `0x7f.1`, `0177.0.0.1`, `127.1`) into dotted decimal; IPv6 comes in brackets.
 *
 * @example
 * ```ts
 * hostAddress(new URL('http://0x7f.1/').hostname); // '127.0.0.1'
 * hostAddress('example.com'); // undefined
 * ```
 */
export function hostAddress(hostname: string): string | undefined {
  const bare = hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
  if (ipaddr.IPv6.isValid(bare)) return bare;
  if (ipaddr.IPv4.isValidFourPartDecimal(bare)) return bare;
  return undefined;
}
