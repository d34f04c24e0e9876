// A small WebAudio player for parsed MIDI notes: two oscillators per note under an envelope,
// scheduled a little ahead of the audio clock ("look-ahead" scheduling), so long pieces do not
// create every voice at once.

const LOOKAHEAD = 0.4; // seconds of notes scheduled ahead of the audio clock
const TICK_MS = 100; // how often the scheduler runs

function frequency(pitch) {
  return 440 * 2 ** ((pitch - 69) / 12);
}

export class Player {
  constructor() {
    this.context = null;
    this.playing = false;
  }

  /** Play notes ({pitch, velocity, start, end} in seconds); onTick(seconds) per frame, onEnd() once. */
  async play(notes, { onTick = () => {}, onEnd = () => {} } = {}) {
    this.stop();
    if (!this.context) {
      const AudioContext = window.AudioContext || window.webkitAudioContext;
      if (!AudioContext) throw new Error("this browser has no Web Audio API");
      this.context = new AudioContext();
    }
    const ctx = this.context;
    await ctx.resume();
    this.out = ctx.createGain();
    this.out.gain.value = 0.6;
    const limiter = ctx.createDynamicsCompressor();
    this.out.connect(limiter).connect(ctx.destination);
    this.voices = new Set();
    this.notes = notes;
    this.next = 0;
    this.t0 = ctx.currentTime + 0.1;
    this.duration = notes.reduce((d, n) => Math.max(d, n.end), 0);
    this.onEnd = onEnd;
    this.playing = true;
    this.schedule();
    this.timer = setInterval(() => this.schedule(), TICK_MS);
    const frame = () => {
      if (!this.playing) return;
      const at = ctx.currentTime - this.t0;
      if (at > this.duration + 0.2) {
        this.stop();
        return;
      }
      onTick(Math.max(at, 0));
      this.frame = requestAnimationFrame(frame);
    };
    this.frame = requestAnimationFrame(frame);
  }

  schedule() {
    const ctx = this.context;
    const horizon = ctx.currentTime - this.t0 + LOOKAHEAD;
    while (this.next < this.notes.length && this.notes[this.next].start < horizon) {
      this.voice(this.notes[this.next++]);
    }
  }

  voice(note) {
    const ctx = this.context;
    const start = this.t0 + note.start;
    const end = this.t0 + Math.max(note.end, note.start + 0.05);
    const peak = 0.25 * (note.velocity / 127);
    const env = ctx.createGain();
    env.gain.setValueAtTime(0, start);
    env.gain.linearRampToValueAtTime(peak, start + 0.01);
    env.gain.exponentialRampToValueAtTime(peak * 0.55, start + 0.25);
    env.gain.setValueAtTime(peak * 0.55, end);
    env.gain.linearRampToValueAtTime(0, end + 0.08);
    env.connect(this.out);
    for (const [type, ratio, level] of [["triangle", 1, 1], ["sine", 2, 0.3]]) {
      const osc = ctx.createOscillator();
      osc.type = type;
      osc.frequency.value = frequency(note.pitch) * ratio;
      const mix = ctx.createGain();
      mix.gain.value = level;
      osc.connect(mix).connect(env);
      osc.start(start);
      osc.stop(end + 0.1);
      this.voices.add(osc);
      osc.onended = () => this.voices.delete(osc);
    }
  }

  stop() {
    if (!this.playing) return;
    this.playing = false;
    clearInterval(this.timer);
    cancelAnimationFrame(this.frame);
    for (const osc of this.voices) {
      try {
        osc.stop();
      } catch {
        // not started yet in some browsers: disconnecting below silences it
      }
    }
    this.out.disconnect();
    this.voices.clear();
    const onEnd = this.onEnd;
    this.onEnd = null;
    if (onEnd) onEnd();
  }
}
