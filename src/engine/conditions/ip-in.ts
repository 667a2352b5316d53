import { BlockList, isIP } from 'node:net';

/** `ip_in`: the caller's IP inside one of the CIDR blocks (IPv4 and IPv6; v4-mapped v6 is v4). */
export function cidrProblem(cidr: string): string | undefined {
  const [addr, bits, extra] = cidr.split('/');
  const family = isIP(addr ?? '');
  if (family === 0 || extra !== undefined) return `"${cidr}" is not a CIDR block`;
  if (bits === undefined) return undefined;
  const n = Number(bits);
  if (!/^\d+$/.test(bits) || n > (family === 4 ? 32 : 128)) return `"${cidr}" has a bad prefix length`;
  return undefined;
}

export function compileCidrs(cidrs: readonly string[]): (ip: string | undefined) => boolean {
  const list = new BlockList();
  for (const cidr of cidrs) {
    const [addr, bits] = cidr.split('/') as [string, string | undefined];
    const type = isIP(addr) === 4 ? 'ipv4' : 'ipv6';
    list.addSubnet(addr, bits === undefined ? (type === 'ipv4' ? 32 : 128) : Number(bits), type);
  }
  return (ip) => {
    if (ip === undefined) return false;
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
    const addr = mapped ? (mapped[1] as string) : ip;
    const family = isIP(addr);
    if (family === 0) return false;
    return list.check(addr, family === 4 ? 'ipv4' : 'ipv6');
  };
}
