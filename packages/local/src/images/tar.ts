/**
 * Just enough of the tar format (POSIX ustar, with pax and GNU long names when reading) to read OCI
 * image archives and their layers, and to write small deterministic ones for tests.
 * https://pubs.opengroup.org/onlinepubs/9699919799/utilities/pax.html#tag_20_92_13_06
 */

/** One member of a tar stream. */
export interface TarEntry {
  /** Path as stored, without a leading `./`. Directories end without a slash. */
  name: string;
  /** `file`, `dir`, `symlink`, `hardlink`, or `other` (devices, fifos). */
  type: 'file' | 'dir' | 'symlink' | 'hardlink' | 'other';
  /** Permission bits, e.g. 0o755. */
  mode: number;
  uid: number;
  gid: number;
  /** Seconds since the epoch. */
  mtime: number;
  /** Link target, for symlinks and hard links. */
  linkname: string;
  /** Contents (empty for anything but regular files). */
  data: Buffer;
}

const BLOCK = 512;

function field(h: Buffer, start: number, length: number): string {
  const raw = h.subarray(start, start + length);
  const nul = raw.indexOf(0);
  return raw.subarray(0, nul < 0 ? length : nul).toString('utf8');
}

function numeric(h: Buffer, start: number, length: number): number {
  const raw = h.subarray(start, start + length);
  // GNU base-256 for values that do not fit in octal: high bit of the first byte set.
  if (((raw[0] ?? 0) & 0x80) !== 0) {
    let v = (raw[0] ?? 0) & 0x7f;
    for (let i = 1; i < raw.length; i++) v = v * 256 + (raw[i] ?? 0);
    return v;
  }
  const text = field(h, start, length).trim();
  return text === '' ? 0 : Number.parseInt(text, 8);
}

function paxRecords(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let at = 0;
  while (at < data.length) {
    const space = data.indexOf(0x20, at);
    if (space < 0) break;
    const len = Number.parseInt(data.subarray(at, space).toString('utf8'), 10);
    if (!Number.isFinite(len) || len <= 0) break;
    const record = data.subarray(space + 1, at + len - 1).toString('utf8');
    const eq = record.indexOf('=');
    if (eq > 0) out[record.slice(0, eq)] = record.slice(eq + 1);
    at += len;
  }
  return out;
}

function typeOf(flag: string): TarEntry['type'] {
  switch (flag) {
    case '0':
    case '':
    case '7':
      return 'file';
    case '5':
      return 'dir';
    case '2':
      return 'symlink';
    case '1':
      return 'hardlink';
    default:
      return 'other';
  }
}

/** Every member of an (uncompressed) tar stream, in order. Throws on a damaged header. */
export function readTar(buf: Buffer): TarEntry[] {
  const entries: TarEntry[] = [];
  let at = 0;
  let pax: Record<string, string> = {};
  let longName: string | undefined;
  let longLink: string | undefined;
  while (at + BLOCK <= buf.length) {
    const h = buf.subarray(at, at + BLOCK);
    if (h.every((b) => b === 0)) break;
    const stored = numeric(h, 148, 8);
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : (h[i] ?? 0);
    if (sum !== stored) throw new Error(`tar: bad header checksum at offset ${at}`);
    const flag = field(h, 156, 1);
    const size = numeric(h, 124, 12);
    const data = buf.subarray(at + BLOCK, at + BLOCK + size);
    at += BLOCK + Math.ceil(size / BLOCK) * BLOCK;
    if (flag === 'x') {
      pax = paxRecords(data);
      continue;
    }
    if (flag === 'g') continue;
    if (flag === 'L') {
      longName = field(data, 0, data.length);
      continue;
    }
    if (flag === 'K') {
      longLink = field(data, 0, data.length);
      continue;
    }
    const prefix = field(h, 345, 155);
    const base = field(h, 0, 100);
    const name = pax.path ?? longName ?? (prefix ? `${prefix}/${base}` : base);
    entries.push({
      name: name.replace(/^\.\//, '').replace(/\/$/, ''),
      type: typeOf(flag),
      mode: numeric(h, 100, 8) & 0o7777,
      uid: pax.uid !== undefined ? Number(pax.uid) : numeric(h, 108, 8),
      gid: pax.gid !== undefined ? Number(pax.gid) : numeric(h, 116, 8),
      mtime: pax.mtime !== undefined ? Math.floor(Number(pax.mtime)) : numeric(h, 136, 12),
      linkname: pax.linkpath ?? longLink ?? field(h, 157, 100),
      data: Buffer.from(data),
    });
    pax = {};
    longName = undefined;
    longLink = undefined;
  }
  return entries;
}

/** What {@link writeTar} writes for one member. */
export interface TarInput {
  name: string;
  /** Regular file contents; omit for a directory (`dir: true`). */
  data?: Buffer | string;
  dir?: boolean;
  /** @default 0o644 for files, 0o755 for directories */
  mode?: number;
}

function octal(value: number, length: number): string {
  return value.toString(8).padStart(length - 1, '0') + '\0';
}

/**
 * A ustar stream of the given members, owned by 0:0 with mtime 0, so the same input gives the same
 * bytes. Names must fit ustar (100 characters, or a 155-character prefix plus 100).
 */
export function writeTar(members: readonly TarInput[]): Buffer {
  const parts: Buffer[] = [];
  for (const m of members) {
    const data = m.dir ? Buffer.alloc(0) : Buffer.from(m.data ?? '');
    let name = m.dir ? `${m.name.replace(/\/$/, '')}/` : m.name;
    let prefix = '';
    if (Buffer.byteLength(name) > 100) {
      const cut = name.lastIndexOf('/', name.length - 2);
      prefix = name.slice(0, cut);
      name = name.slice(cut + 1);
      if (cut < 0 || Buffer.byteLength(prefix) > 155 || Buffer.byteLength(name) > 100)
        throw new Error(`tar: name too long for ustar: ${m.name}`);
    }
    const h = Buffer.alloc(BLOCK);
    h.write(name, 0, 100, 'utf8');
    h.write(octal(m.mode ?? (m.dir ? 0o755 : 0o644), 8), 100, 'ascii');
    h.write(octal(0, 8), 108, 'ascii');
    h.write(octal(0, 8), 116, 'ascii');
    h.write(octal(data.length, 12), 124, 'ascii');
    h.write(octal(0, 12), 136, 'ascii');
    h.write('        ', 148, 'ascii');
    h.write(m.dir ? '5' : '0', 156, 'ascii');
    h.write('ustar\0', 257, 'ascii');
    h.write('00', 263, 'ascii');
    h.write(prefix, 345, 155, 'utf8');
    let sum = 0;
    for (const b of h) sum += b;
    h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
    parts.push(h, data, Buffer.alloc((BLOCK - (data.length % BLOCK)) % BLOCK));
  }
  parts.push(Buffer.alloc(BLOCK * 2));
  return Buffer.concat(parts);
}
