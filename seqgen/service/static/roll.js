// Piano roll in SVG, drawn from the note events of POST /v1/samples as they stream in.
// Coordinates are grid units: x = step, y = 127 - pitch; the viewBox follows the notes drawn so far.

const SVG = "http://www.w3.org/2000/svg";
const BLACK = new Set([1, 3, 6, 8, 10]);

function element(name, attrs) {
  const el = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  return el;
}

export class PianoRoll {
  constructor(svg) {
    this.svg = svg;
    this.reset();
  }

  reset() {
    this.svg.replaceChildren();
    const rows = element("g", { "aria-hidden": "true" });
    for (let pitch = 0; pitch < 128; pitch++) {
      if (BLACK.has(pitch % 12)) rows.append(element("rect", { class: "black", x: 0, y: 127 - pitch, width: 1e6, height: 1 }));
      if (pitch % 12 === 0) rows.append(element("line", { class: "c-line", x1: 0, x2: 1e6, y1: 128 - pitch, y2: 128 - pitch }));
    }
    this.notes = element("g", {});
    this.cursor = element("line", { class: "cursor", x1: 0, x2: 0, y1: 0, y2: 128, visibility: "hidden" });
    this.svg.append(rows, this.notes, this.cursor);
    this.steps = 0; // grid steps covered so far (notes and rests)
    this.low = 128;
    this.high = -1;
    this.count = 0;
    this.noteEnd = 0; // the step where the last note ends
    this.sounding = new Map(); // poly encoding: pitch -> the note it would extend
    this.fit();
  }

  /** Add a batch of events ({type, pitch, step, duration}); primed: they come from the primer. */
  add(events, primed = false) {
    for (const e of events) {
      switch (e.type) {
        case "note": // melody: a pitch held for `duration` steps
          this.note(e.pitch, e.step, e.step + e.duration, primed);
          break;
        case "rest":
          this.steps = Math.max(this.steps, e.step + e.duration);
          break;
        // poly: a step lists its pitches, "note_on" if struck there, "hold" if held from the step
        // before. As the MIDI writer reads them: a pitch named twice in a step is one note there
        // (struck if either says so), a hold with nothing to extend starts a note.
        case "note_on": {
          const last = this.sounding.get(e.pitch);
          if (last && last.start === e.step) break; // struck twice in this step
          if (last && last.end === e.step + 1) this.extend(last, e.step); // held here, then struck: restarts
          this.sounding.set(e.pitch, this.note(e.pitch, e.step, e.step + 1, primed));
          break;
        }
        case "hold": {
          const last = this.sounding.get(e.pitch);
          if (last && last.end === e.step + 1) break; // already sounding in this step
          if (last && last.end === e.step) this.extend(last, e.step + 1);
          else this.sounding.set(e.pitch, this.note(e.pitch, e.step, e.step + 1, primed));
          break;
        }
        case "step":
          this.steps = Math.max(this.steps, e.step + 1);
          break;
        default: // "end" and tokens that are not notes
      }
    }
    this.fit();
  }

  note(pitch, start, end, primed) {
    const rect = element("rect", { class: primed ? "note primed" : "note", x: start, y: 127 - pitch + 0.1,
                                    width: Math.max(end - start - 0.12, 0.3), height: 0.8 });
    rect.dataset.pitch = pitch;
    this.notes.append(rect);
    this.count++;
    this.low = Math.min(this.low, pitch);
    this.high = Math.max(this.high, pitch);
    this.steps = Math.max(this.steps, end);
    this.noteEnd = Math.max(this.noteEnd, end);
    return { rect, start, end };
  }

  extend(note, end) { // or shorten
    note.end = end;
    note.rect.setAttribute("width", Math.max(end - note.start - 0.12, 0.3));
    this.steps = Math.max(this.steps, end);
    this.noteEnd = Math.max(this.noteEnd, end);
  }

  fit() {
    let low = this.high < 0 ? 60 : this.low - 2;
    let high = this.high < 0 ? 72 : this.high + 2;
    const span = high - low + 1;
    if (span < 24) { // at least two octaves tall, so a few notes do not become huge bars
      low -= Math.floor((24 - span) / 2);
      high = low + 23;
    }
    const width = Math.max(this.steps, 32);
    this.svg.setAttribute("viewBox", `0 ${127 - high} ${width} ${high - low + 1}`);
  }

  /** Show the playback position at `step` (null hides it). */
  setCursor(step) {
    if (step === null) {
      this.cursor.setAttribute("visibility", "hidden");
      return;
    }
    this.cursor.setAttribute("x1", step);
    this.cursor.setAttribute("x2", step);
    this.cursor.setAttribute("visibility", "visible");
  }
}
