// A small Standard MIDI File reader for playback: notes with start and end in seconds.
// Every length is checked against the bytes there are; anything malformed throws an Error.

function fail(message) {
  throw new Error(`not a valid MIDI file: ${message}`);
}

class Reader {
  constructor(bytes, pos, end) {
    this.bytes = bytes;
    this.pos = pos;
    this.end = end;
  }

  byte() {
    if (this.pos >= this.end) fail("truncated");
    return this.bytes[this.pos++];
  }

  skip(n) {
    if (this.pos + n > this.end) fail("truncated");
    this.pos += n;
  }

  varlen() {
    let value = 0;
    for (let i = 0; i < 4; i++) {
      const b = this.byte();
      value = value * 128 + (b & 0x7f);
      if (!(b & 0x80)) return value;
    }
    return fail("variable-length number over 4 bytes");
  }
}

function tag(bytes, pos) {
  return String.fromCharCode(...bytes.subarray(pos, pos + 4));
}

function u32(bytes, pos) {
  return ((bytes[pos] << 24) >>> 0) + (bytes[pos + 1] << 16) + (bytes[pos + 2] << 8) + bytes[pos + 3];
}

/** ArrayBuffer of a .mid file -> {notes: [{pitch, velocity, channel, start, end}] (seconds), duration}. */
export function parseMidi(buffer) {
  const bytes = new Uint8Array(buffer);
  if (bytes.length < 14 || tag(bytes, 0) !== "MThd") fail("no MThd header");
  const headerLength = u32(bytes, 4);
  const tracks = (bytes[10] << 8) | bytes[11];
  const division = (bytes[12] << 8) | bytes[13];
  if (headerLength < 6 || division === 0 || division & 0x8000) fail("unsupported header");
  const events = []; // [tick, order, kind, a, b, c]: order puts note-offs before note-ons at one tick
  let pos = 8 + headerLength;
  for (let t = 0; t < tracks; t++) {
    if (pos + 8 > bytes.length || tag(bytes, pos) !== "MTrk") fail(`track ${t + 1} has no MTrk header`);
    const end = pos + 8 + u32(bytes, pos + 4);
    if (end > bytes.length) fail(`track ${t + 1} is truncated`);
    const r = new Reader(bytes, pos + 8, end);
    let tick = 0;
    let status = 0;
    while (r.pos < end) {
      tick += r.varlen();
      const b = r.byte();
      if (b & 0x80) status = b;
      else if (!status) fail("data byte without a status");
      else r.pos--; // running status
      if (status === 0xff) {
        const type = r.byte();
        const length = r.varlen();
        if (type === 0x51 && length === 3) {
          const tempo = (r.byte() << 16) | (r.byte() << 8) | r.byte();
          events.push([tick, 0, "tempo", tempo]);
        } else {
          r.skip(length);
        }
        if (type === 0x2f) break;
        status = 0;
      } else if (status === 0xf0 || status === 0xf7) {
        r.skip(r.varlen());
        status = 0;
      } else {
        const kind = status & 0xf0;
        const channel = status & 0x0f;
        const data1 = r.byte();
        const data2 = kind === 0xc0 || kind === 0xd0 ? 0 : r.byte();
        if (kind === 0x90 && data2 > 0) events.push([tick, 2, "on", channel, data1, data2]);
        else if (kind === 0x80 || kind === 0x90) events.push([tick, 1, "off", channel, data1]);
      }
    }
    pos = end;
  }
  events.sort((x, y) => x[0] - y[0] || x[1] - y[1]);
  let tempo = 500000; // microseconds per quarter until a set_tempo says otherwise
  let lastTick = 0;
  let seconds = 0;
  const open = new Map(); // "channel pitch" -> notes started and not yet released
  const notes = [];
  for (const [tick, , kind, a, b, c] of events) {
    seconds += ((tick - lastTick) * tempo) / (division * 1e6);
    lastTick = tick;
    if (kind === "tempo") {
      tempo = a;
    } else if (kind === "on") {
      const key = `${a} ${b}`;
      if (!open.has(key)) open.set(key, []);
      open.get(key).push({ pitch: b, velocity: c, channel: a, start: seconds, end: seconds });
    } else {
      const started = open.get(`${a} ${b}`);
      const note = started && started.shift();
      if (note) {
        note.end = seconds;
        notes.push(note);
      }
    }
  }
  for (const started of open.values()) for (const note of started) notes.push({ ...note, end: seconds });
  notes.sort((x, y) => x.start - y.start || x.pitch - y.pitch);
  return { notes, duration: notes.reduce((d, n) => Math.max(d, n.end), 0) };
}
