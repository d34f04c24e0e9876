// The seqgen page: picks a model from GET /v1/models, streams POST /v1/samples (server-sent
// events read from fetch, since EventSource cannot POST or send a key), shows text as it arrives
// or draws MIDI note events on a piano roll, then fetches the same sample as a .mid file (same
// seed and options give the same sample) to play and download.

import { parseMidi } from "./midi.js";
import { PianoRoll } from "./roll.js";
import { Player } from "./player.js";

const $ = (id) => document.getElementById(id);
const form = $("controls");
const modelSelect = $("model");
const output = $("output");
const errorBox = $("error");
const statusLine = $("status");
const keyField = $("key-field");
const keyInput = $("api-key");
const generateButton = $("generate");
const stopButton = $("stop");
const playButton = $("play");
const download = $("download");
const roll = new PianoRoll($("roll"));
const player = new Player();
const KEY = "seqgen-api-key";
const NUMBERS = { temperature: "Temperature", top_p: "Top-p", length: "Length", seed: "Seed" };

let models = [];
let running = null; // AbortController of the generation in progress
let midi = null; // {notes, duration, steps} of the last sample, for playback
let midiUrl = null;

class ApiError extends Error {
  constructor(status, message, param = null) {
    super(message);
    this.status = status;
    this.param = param;
  }
}

function headers(json) {
  const h = {};
  if (json) h["Content-Type"] = "application/json";
  const key = sessionStorage.getItem(KEY);
  if (key) h.Authorization = `Bearer ${key}`;
  return h;
}

async function apiError(response) {
  try {
    const { error } = await response.json();
    if (error && error.message) return new ApiError(response.status, error.message, error.param);
  } catch {
    // not JSON: fall back to the status line
  }
  return new ApiError(response.status, response.statusText || "request failed");
}

function clearError() {
  errorBox.hidden = true;
  errorBox.textContent = "";
  for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
}

function showError(err) {
  let message;
  if (err instanceof ApiError && err.status === 401) {
    keyField.hidden = false;
    message = sessionStorage.getItem(KEY)
      ? "The server refused the API key (401). Check the key below and try again."
      : "This server needs an API key (401). Enter it below, then press Generate.";
    keyInput.setAttribute("aria-invalid", "true");
  } else if (err instanceof ApiError) {
    message = err.status ? `Error ${err.status}: ${err.message}` : `Error: ${err.message}`;
    const field = err.param && document.getElementById(err.param);
    if (field && form.contains(field)) field.setAttribute("aria-invalid", "true");
  } else if (err instanceof TypeError) { // what fetch throws when there is no answer
    message = `Could not reach the server: ${err.message}`;
  } else {
    message = `Error: ${err.message}`;
  }
  errorBox.textContent = message;
  errorBox.hidden = false;
}

function setStatus(text) {
  statusLine.textContent = text;
}

function current() {
  return models.find((m) => m.id === modelSelect.value);
}

function showModel() {
  const model = current();
  if (!model) return;
  const isMidi = model.output === "midi";
  const about = model.description ? `${model.description}. ` : "";
  $("model-about").textContent = `${about}Cell ${model.cell}, tokenizer ${model.tokenizer}, ` +
    `writes ${isMidi ? "MIDI" : "text"}.`;
  $("prime-hint").textContent = isMidi
    ? "Note tokens to start from, as seqgen tokenize prints them (a melody model: n67_d4 n69_d2); " +
      "empty: the model's own start."
    : "Text to start from; empty: the model's own start.";
  $("music-out").hidden = !isMidi;
  $("text-out").hidden = isMidi;
}

async function loadModels() {
  const response = await fetch("/v1/models", { headers: headers(false) });
  if (!response.ok) throw await apiError(response);
  const { data } = await response.json();
  models = data.filter((m) => (m.task || "lm") === "lm"); // taggers and classifiers label, they do not generate
  const chosen = modelSelect.value;
  modelSelect.replaceChildren(...models.map((m) => new Option(`${m.id} (${m.output})`, m.id)));
  if (models.some((m) => m.id === chosen)) modelSelect.value = chosen;
  modelSelect.disabled = false;
  showModel();
}

/** The request body from the form; a field the browser cannot read as a number is an error here. */
function requestBody(model) {
  const body = { model: model.id };
  const prime = $("prime").value;
  if (prime) body.prime = prime;
  for (const [name, label] of Object.entries(NUMBERS)) {
    const input = $(name);
    if (input.validity.badInput) {
      input.setAttribute("aria-invalid", "true");
      throw new ApiError(null, `${label.toLowerCase()}: not a number`, name);
    }
    const value = input.value.trim();
    if (value === "") continue;
    // seeds go up to 2**63 - 1, past what a JS number holds exactly: sent as text, the server reads an int
    body[name] = name === "seed" ? value : Number(value);
  }
  return body;
}

/** Server-sent events of a fetch response body: yields {event, data}. */
async function* events(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) yield { event, data: data.join("\n") };
    }
  }
}

/** The "seed" of a JSON text as a string (JSON.parse would round seeds above 2**53). */
function seedOf(json) {
  const m = /"seed":\s*(\d+)/.exec(json);
  return m ? m[1] : null;
}

function resetOutput(isMidi) {
  player.stop();
  output.replaceChildren();
  roll.reset();
  midi = null;
  playButton.disabled = true;
  if (midiUrl) URL.revokeObjectURL(midiUrl);
  midiUrl = null;
  download.removeAttribute("href");
  download.removeAttribute("download");
  download.setAttribute("aria-disabled", "true");
  $("music-out").hidden = !isMidi;
  $("text-out").hidden = isMidi;
}

async function generate() {
  const model = current();
  const body = requestBody(model);
  const isMidi = model.output === "midi";
  resetOutput(isMidi);
  running = new AbortController();
  const { signal } = running;
  generateButton.setAttribute("aria-disabled", "true"); // not `disabled`: that would take the focus away
  stopButton.disabled = false;
  form.setAttribute("aria-busy", "true");
  setStatus(`Generating from ${model.id}…`);
  let pieces = 0;
  let summary = null;
  try {
    const response = await fetch("/v1/samples", {
      method: "POST", headers: headers(true), body: JSON.stringify({ ...body, stream: true }), signal,
    });
    if (!response.ok) throw await apiError(response);
    let first = true;
    for await (const { event, data } of events(response.body)) {
      if (event === "error") {
        const { error } = JSON.parse(data);
        throw new ApiError(null, error.message, error.param);
      }
      if (event === "done") {
        summary = { ...JSON.parse(data), seed: seedOf(data) };
        break;
      }
      const message = JSON.parse(data);
      const primed = first && Boolean(body.prime); // the first event of a primed sample is the primer
      first = false;
      if (isMidi) {
        roll.add(message.events, primed);
        setStatus(`Generating from ${model.id}… ${roll.count} notes`);
      } else if (primed) {
        const span = document.createElement("span");
        span.className = "prime";
        span.textContent = message.text;
        output.append(span);
      } else {
        output.append(message.text);
        pieces += message.text.length;
        setStatus(`Generating from ${model.id}… ${pieces} characters`);
        output.scrollTop = output.scrollHeight;
      }
    }
    if (!summary) throw new ApiError(null, "the stream ended before the sample was complete");
    const sample = summary.samples[0];
    const tokens = `${sample.tokens} tokens${body.prime ? " with the primer" : ""}`;
    let done = `Done: ${model.id}, seed ${summary.seed}, ${tokens}, ended by ${sample.finish}`;
    if (isMidi) {
      await fetchMidi(model, { ...body, seed: summary.seed }, signal);
      done += `, ${roll.count} notes, ${midi.duration.toFixed(1)} s`;
    }
    setStatus(done);
  } catch (err) {
    if (err.name === "AbortError") setStatus("Stopped.");
    else {
      setStatus("");
      showError(err);
    }
  } finally {
    running = null;
    generateButton.removeAttribute("aria-disabled");
    const stopHadFocus = document.activeElement === stopButton;
    stopButton.disabled = true;
    if (stopHadFocus) generateButton.focus();
    form.removeAttribute("aria-busy");
  }
}

/** The streamed sample again as a .mid file (same seed and options: the same notes). */
async function fetchMidi(model, body, signal) {
  const response = await fetch("/v1/samples", {
    method: "POST", headers: headers(true), body: JSON.stringify(body), signal,
  });
  if (!response.ok) throw await apiError(response);
  const bytes = await response.arrayBuffer();
  midi = parseMidi(bytes);
  midiUrl = URL.createObjectURL(new Blob([bytes], { type: "audio/midi" }));
  download.href = midiUrl;
  download.download = `seqgen-${model.id}-${body.seed}.mid`;
  download.removeAttribute("aria-disabled");
  playButton.disabled = midi.notes.length === 0;
}

async function togglePlay() {
  if (player.playing) {
    player.stop();
    return;
  }
  clearError();
  // the roll's steps and the file's seconds cover the same notes: the cursor maps one to the other
  const perStep = midi.duration > 0 && roll.noteEnd > 0 ? midi.duration / roll.noteEnd : 1;
  playButton.textContent = "Stop playing";
  try {
    await player.play(midi.notes, {
      onTick: (seconds) => roll.setCursor(seconds / perStep),
      onEnd: () => {
        roll.setCursor(null);
        playButton.textContent = "Play";
        setStatus("Finished playing.");
      },
    });
    setStatus(`Playing ${midi.notes.length} notes (${midi.duration.toFixed(1)} s).`);
  } catch (err) {
    playButton.textContent = "Play";
    showError(new Error(`cannot play here: ${err.message}`));
  }
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  if (running) return;
  clearError();
  if (!keyField.hidden) {
    const key = keyInput.value.trim();
    if (key) sessionStorage.setItem(KEY, key);
    else sessionStorage.removeItem(KEY);
  }
  try {
    if (!models.length) await loadModels();
    await generate();
  } catch (err) {
    showError(err);
  }
});

stopButton.addEventListener("click", () => running && running.abort());
playButton.addEventListener("click", togglePlay);
download.addEventListener("click", (event) => {
  if (!midiUrl) event.preventDefault();
});
modelSelect.addEventListener("change", () => {
  showModel();
  resetOutput(current().output === "midi");
  setStatus("");
});

if (sessionStorage.getItem(KEY)) {
  keyField.hidden = false;
  keyInput.value = sessionStorage.getItem(KEY);
}
loadModels().catch(showError);
