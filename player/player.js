// Videoflix player: log in, browse (search, categories, continue watching, pages loaded as you
// scroll), play with hls.js (resuming where you stopped; playback beacons save the position), pick a
// quality, log out. The API is on another origin (?api=..., default http://127.0.0.1:8000); every
// request carries the HttpOnly cookies the API sets (credentials: 'include' / withCredentials).
"use strict";

const PARAMS = new URLSearchParams(location.search);
const API = (PARAMS.get("api") || "http://127.0.0.1:8000").replace(/\/+$/, "");
const REFRESH_EVERY_MS = 20 * 60 * 1000; // the contract: clients refresh every 20 minutes
const PAGE_SIZE = Math.min(100, Math.max(1, Number(PARAMS.get("page")) || 24)); // ?page=: tests
const ROW_SIZE = 12; // videos per category row
const SAVE_EVERY_MS = 10 * 1000; // a beacon (and the watch position) while playing, and on pause
// ?video=<id>: a link to one video, played once the catalogue is shown (after logging in if need be).
let linkedVideo = Number(PARAMS.get("video")) || null;
// While a video is still processing, its detail is asked again this often (?poll=s: tests).
const POLL_EVERY_MS = (Number(PARAMS.get("poll")) || 4) * 1000;

const $ = (id) => document.getElementById(id);
const video = $("video");
const quality = $("quality");
let hls = null;
let refreshTimer = null;
const list = { query: "", category: "", next: null, loading: false, generation: 0 };

/** fetch() against the API (a path, or an absolute URL such as a Link) with the cookies; resolves
 * to {status, body, headers} (body: parsed JSON or null). */
async function api(path, { method = "GET", body } = {}) {
  const response = await fetch(/^https?:/.test(path) ? path : API + path, {
    method,
    credentials: "include",
    headers: body === undefined ? {} : { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = null;
  try {
    data = await response.json();
  } catch {
    // Every API answer is JSON; a non-JSON body is reported as an error by the caller.
  }
  return { status: response.status, body: data, headers: response.headers };
}

/** One readable sentence from an error body: {"detail": ...} or {"field": ["...", ...]}. */
function errorText(result) {
  const body = result.body;
  if (body && typeof body.detail === "string") return body.detail;
  if (body && typeof body === "object") {
    const parts = Object.entries(body).map(([field, errors]) =>
      `${field}: ${Array.isArray(errors) ? errors.join(" ") : String(errors)}`);
    if (parts.length) return parts.join(" ");
  }
  return `The server answered ${result.status}.`;
}

function say(text, isError = false) {
  $("message").textContent = text;
  $("message").classList.toggle("error", isError);
}

function show(view) {
  for (const id of ["login-view", "catalogue-view"]) $(id).hidden = id !== view;
  if (view !== "catalogue-view") stopPlayback();
}

// --- session ----------------------------------------------------------------------------------

async function logIn(event) {
  event.preventDefault();
  $("login-submit").disabled = true;
  try {
    const result = await api("/api/login/", {
      method: "POST",
      body: { email: $("email").value.trim(), password: $("password").value },
    });
    if (result.status !== 200) {
      say(errorText(result), true);
      return;
    }
    $("password").value = "";
    startSession(result.body.user);
    say("Logged in.");
    await loadCatalogue();
  } catch (error) {
    say(`The API at ${API} cannot be reached (${error.message}).`, true);
  } finally {
    $("login-submit").disabled = false;
  }
}

function startSession(user) {
  $("user-email").textContent = user ? user.email : "";
  $("session").hidden = false;
  clearInterval(refreshTimer);
  refreshTimer = setInterval(refreshToken, REFRESH_EVERY_MS);
}

function endSession() {
  clearInterval(refreshTimer);
  refreshTimer = null;
  $("session").hidden = true;
  $("user-email").textContent = "";
  for (const id of ["videos", "continue", "category-rows"]) $(id).replaceChildren();
  show("login-view");
}

/** Renew the access cookie; false (and back to the login form) when the session is over. */
async function refreshToken() {
  const result = await api("/api/token/refresh/", { method: "POST" });
  if (result.status === 200) return true;
  endSession();
  say("Your session has ended; please log in again.", true);
  return false;
}

async function logOut() {
  stopPlayback();
  const result = await api("/api/logout/", { method: "POST" });
  endSession();
  // A 400 means the session was already gone; the cookies are deleted either way.
  say(result.status === 200 ? "Logged out." : errorText(result), result.status !== 200);
}

// --- catalogue --------------------------------------------------------------------------------

async function loadCatalogue() {
  delete $("catalogue-view").dataset.loaded;
  const result = await loadPage(true);
  if (result.status === 401) {
    endSession();
    return;
  }
  if (result.status !== 200) return;
  $("session").hidden = false;
  show("catalogue-view");
  await Promise.all([loadContinueWatching(), loadCategoryRows()]);
  // Every row is in place: nothing above the list moves any more (tests wait for this).
  $("catalogue-view").dataset.loaded = "true";
  if (linkedVideo) {
    const videoId = linkedVideo;
    linkedVideo = null;
    await play(videoId);
  }
}

/** The list: the first page of the current search and category (fresh), or the next one. */
async function loadPage(fresh = false) {
  if (fresh) {
    list.generation += 1;
    list.next = null;
  } else if (!list.next || list.loading) {
    return { status: 204 };
  }
  const generation = list.generation;
  const query = new URLSearchParams({ limit: String(PAGE_SIZE) });
  if (list.query) query.set("q", list.query);
  if (list.category) query.set("category", list.category);
  list.loading = true;
  try {
    const result = await api(fresh ? `/api/video/?${query}` : list.next);
    if (generation !== list.generation) return { status: 204 }; // a newer search won
    if (result.status !== 200 || !Array.isArray(result.body)) {
      if (result.status !== 401) say(errorText(result), true);
      return result;
    }
    const link = (result.headers.get("Link") || "").match(/<([^>]+)>;\s*rel="next"/);
    list.next = link ? link[1] : null;
    const cards = result.body.map((item) => {
      const li = document.createElement("li");
      li.append(videoCard(item));
      return li;
    });
    if (fresh) $("videos").replaceChildren(...cards);
    else $("videos").append(...cards);
    const total = Number(result.headers.get("X-Total-Count"));
    $("videos").dataset.total = String(total);
    $("empty").textContent = list.query || list.category ? "Nothing matches." : "No video is ready yet.";
    $("empty").hidden = total > 0;
    $("list-heading").textContent = list.query ? `Results for “${list.query}”` : list.category || "Videos";
    return result;
  } finally {
    list.loading = false;
    if (generation === list.generation) setTimeout(loadMoreIfInView);
  }
}

/** The next page while the end of the list is (still) within 400 px of the viewport. */
function loadMoreIfInView() {
  if (!$("catalogue-view").hidden && $("more").getBoundingClientRect().top < innerHeight + 400) loadPage();
}

function videoCard(item, onClick = () => play(item.id)) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "video-card";
  button.dataset.videoId = String(item.id);
  if (item.thumbnail_url) {
    const img = document.createElement("img");
    img.src = item.thumbnail_url; // same-site, so the browser sends the access cookie
    img.alt = "";
    img.loading = "lazy";
    button.append(img);
  }
  const title = document.createElement("span");
  title.className = "title";
  title.textContent = item.title;
  const category = document.createElement("span");
  category.className = "category";
  category.textContent = item.category;
  button.append(title, category);
  button.title = item.description || item.title;
  button.addEventListener("click", onClick);
  return button;
}

async function loadContinueWatching() {
  const result = await api("/api/continue-watching/");
  const items = result.status === 200 && Array.isArray(result.body) ? result.body : [];
  const cards = items.map((item) => {
    const card = videoCard(item, () => play(item.id, item.position));
    card.dataset.position = String(item.position);
    const bar = document.createElement("span");
    bar.className = "resume-bar";
    const done = document.createElement("span");
    done.style.width = `${item.duration ? Math.min(100, (100 * item.position) / item.duration) : 0}%`;
    bar.append(done);
    card.append(bar);
    const li = document.createElement("li");
    li.append(card);
    return li;
  });
  $("continue").replaceChildren(...cards);
  $("continue-row").hidden = cards.length === 0;
}

/** One row per category (its newest videos); its heading filters the list below. */
async function loadCategoryRows() {
  const result = await api("/api/categories/");
  if (result.status !== 200 || !Array.isArray(result.body)) return;
  const rows = await Promise.all(result.body.map(async ({ name, count }) => {
    const page = await api(`/api/video/?${new URLSearchParams({ category: name, limit: String(ROW_SIZE) })}`);
    const section = document.createElement("section");
    section.className = "shelf category-row";
    section.dataset.category = name;
    const heading = document.createElement("h2");
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = name;
    const number = document.createElement("span");
    number.className = "count";
    number.textContent = ` (${count})`;
    button.addEventListener("click", () => filterBy(list.category === name ? "" : name));
    heading.append(button, number);
    const row = document.createElement("ul");
    row.className = "row";
    for (const item of page.status === 200 ? page.body : []) {
      const li = document.createElement("li");
      li.append(videoCard(item));
      row.append(li);
    }
    section.append(heading, row);
    return section;
  }));
  $("category-rows").replaceChildren(...rows);
}

function filterBy(category) {
  list.category = category;
  $("list-heading").scrollIntoView({ block: "start" });
  loadPage(true);
}

let searchTimer = null;
function searchSoon() {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(() => {
    list.query = $("search").value.trim();
    $("category-rows").hidden = Boolean(list.query);
    loadPage(true);
  }, 250);
}

// The next page when the end of the list comes into view (and after each page, see loadPage).
new IntersectionObserver((entries) => {
  if (entries.some((entry) => entry.isIntersecting)) loadMoreIfInView();
}, { rootMargin: "400px" }).observe($("more"));

// --- playback ---------------------------------------------------------------------------------

/** The rendition label ("720p") of an hls.js level, from its playlist URL, else its height. */
function levelLabel(level) {
  const url = String(level.url || level.uri || "");
  const match = url.match(/\/(\d+p)\/[^/]*\.m3u8/);
  return match ? match[1] : `${level.height}p`;
}

/** Play a video from `resumeAt` seconds (0: the start).
 *
 * A video still being transcoded may already be playable (`playable`, `master_url`) while its
 * `status` is "processing": it plays from the start as its playlists grow (EVENT, then VOD), and
 * a notice says so, with the progress, until its detail says "ready". One not yet playable shows
 * the processing state and starts by itself once it is; one that fails says so. */
async function play(videoId, resumeAt = 0) {
  stopPlayback();
  const detail = await api(`/api/video/${videoId}/`);
  if (detail.status === 401) return refreshToken().then((ok) => ok && play(videoId, resumeAt));
  if (detail.status !== 200) {
    say(errorText(detail), true);
    return;
  }
  $("now-playing").textContent = detail.body.title;
  $("player-view").hidden = false;
  video.dataset.videoId = String(videoId);
  say("");
  const watching = { videoId, resumeAt, started: false, timer: null };
  current = watching;
  followProcessing(watching, detail.body);
}

let current = null; // what play() shows: {videoId, resumeAt, started, timer}

/** Whether a detail can be played now: `playable` where the API says it, else (older APIs) ready. */
function isPlayable(body) {
  return typeof body.playable === "boolean" ? body.playable && Boolean(body.master_url) : body.status === "ready";
}

/** Act on a (fresh) detail of the video being shown: start playback once it is playable, show the
 * processing notice while it is not ready, stop at a failure; ask again in POLL_EVERY_MS until the
 * video is ready or failed. */
function followProcessing(watching, body) {
  if (watching !== current) return;
  if (body.status === "failed") {
    const why = typeof body.error === "string" && body.error ? ` (${body.error})` : "";
    showProcessing("failed", `This video could not be processed${why}.`);
    stopPlayback(false);
    return;
  }
  if (!watching.started && isPlayable(body)) {
    watching.started = true;
    startPlayback(watching.videoId, body.master_url || `${API}/api/video/${watching.videoId}/master.m3u8`,
      watching.resumeAt);
  }
  if (body.status === "ready") {
    showProcessing(null);
    return;
  }
  const percent = Math.max(0, Math.min(100, Math.round(Number(body.progress) || 0)));
  showProcessing(watching.started ? "playing" : "waiting", watching.started
    ? `Still processing (${percent} %): playing what is ready; the rest follows as it is transcoded.`
    : `Processing (${percent} %): this video plays as soon as its first part is ready.`, percent);
  watching.timer = setTimeout(() => poll(watching), POLL_EVERY_MS);
}

async function poll(watching) {
  if (watching !== current) return;
  let detail;
  try {
    detail = await api(`/api/video/${watching.videoId}/`);
  } catch {
    detail = { status: 0 }; // offline for a moment: ask again later
  }
  if (watching !== current) return;
  if (detail.status === 200 && detail.body) {
    followProcessing(watching, detail.body);
  } else if (detail.status === 404) {
    // A part that fails for good withdraws the video: its detail goes for viewers too.
    showProcessing("failed", "This video is no longer available: its processing failed or it was removed.");
    stopPlayback(false);
  } else {
    if (detail.status === 401 && !(await refreshToken())) return;
    watching.timer = setTimeout(() => poll(watching), POLL_EVERY_MS);
  }
}

/** The notice above the video: state "waiting" | "playing" | "failed", or null to drop it. */
function showProcessing(state, text = "", percent = null) {
  const notice = $("processing");
  notice.hidden = state === null;
  notice.textContent = text;
  notice.classList.toggle("error", state === "failed");
  if (state === null) delete notice.dataset.state;
  else notice.dataset.state = state;
  if (percent === null) delete notice.dataset.progress;
  else notice.dataset.progress = String(percent);
}

function startPlayback(videoId, source, resumeAt) {
  openSession(videoId);
  beacon.levelSeen = false;
  beacon.rendition = null;
  if (window.Hls && Hls.isSupported()) {
    startHls(source, resumeAt);
  } else if (video.canPlayType("application/vnd.apple.mpegurl")) {
    video.src = source; // Safari plays HLS natively (no quality menu: the browser decides)
    // A growing (EVENT) playlist says EXT-X-START:TIME-OFFSET=0; the start is set here as well.
    video.addEventListener("loadedmetadata", () => { video.currentTime = resumeAt; }, { once: true });
    video.play().catch(() => {});
  } else {
    say("This browser can play neither HLS nor Media Source Extensions.", true);
  }
}

function startHls(source, resumeAt) {
  let retriedAuth = false;
  hls = new Hls({
    // Always an explicit start: hls.js treats a growing (EVENT) playlist as live and would start
    // near its live edge; a viewer starts at 0 (or where they stopped) and is never moved forward.
    startPosition: Math.max(0, resumeAt),
    liveSyncDurationCount: 3,
    liveMaxLatencyDurationCount: Infinity, // never seek to the live edge, however far behind
    maxLiveSyncPlaybackRate: 1, // nor speed up to catch it
    liveDurationInfinity: false, // the seek bar spans what is stored, and grows with it
    // Cookies go to the API only: presigned segment URLs (MEDIA_DELIVERY=signed) name the bucket,
    // which authorises by the URL's signature and allows no credentialed cross-origin reads.
    xhrSetup: (xhr, url) => { xhr.withCredentials = url.startsWith(API + "/"); },
    fetchSetup: (context, init) => new Request(context.url,
      { ...init, credentials: context.url.startsWith(API + "/") ? "include" : "omit" }),
  });
  hls.on(Hls.Events.MANIFEST_PARSED, () => {
    buildQualityMenu();
    video.play().catch((error) => say(`Press play to start (${error.message}).`));
  });
  hls.on(Hls.Events.LEVEL_SWITCHED, (_event, data) => {
    const level = hls.levels[data.level];
    const mode = hls.autoLevelEnabled ? "auto" : "manual";
    $("level-status").textContent = `Playing ${levelLabel(level)} (${mode})`;
    $("level-status").dataset.level = levelLabel(level);
    noteLevel(levelLabel(level));
  });
  hls.on(Hls.Events.ERROR, async (_event, data) => {
    if (!data.fatal) return;
    const code = data.response && data.response.code;
    if (code === 401 && !retriedAuth) {
      // The access cookie expired mid-film: renew it once and resume where loading stopped.
      retriedAuth = true;
      if (await refreshToken()) {
        if (data.details === Hls.ErrorDetails.MANIFEST_LOAD_ERROR) hls.loadSource(source);
        else hls.startLoad();
      }
      return;
    }
    say(`Playback stopped: ${data.details}${code ? ` (HTTP ${code})` : ""}.`, true);
    if (beacon.started) sendBeacon("error");
    stopPlayback(false);
  });
  hls.loadSource(source);
  hls.attachMedia(video);
  document.dispatchEvent(new CustomEvent("videoflix:play", { detail: { hls, video, videoId: video.dataset.videoId } }));
}

// --- playback sessions (beacons) ----------------------------------------------------------------
// One playback session per video played: a "start" beacon at the first frame (with the time to
// first frame), "progress" every BEACON_EVERY_MS while playing, "pause", "seek" (before the jump),
// "end" and "error". Each says what happened since the previous one (seconds watched, stalls,
// seconds stalled, quality switches) and where the viewer is, which the API also saves as the
// watch position: one request, never a second PUT /progress/. Beacons never wait on anything the
// player does; on leaving the page the last one goes with navigator.sendBeacon.

const BEACON_EVERY_MS = (Number(PARAMS.get("beacon")) || SAVE_EVERY_MS / 1000) * 1000; // ?beacon=s: tests
const beacon = { session: null, seq: 0, videoId: null, requestedAt: 0, started: false, ended: false,
  lastTime: null, watched: 0, stalls: 0, stalled: 0, stallStart: null, switches: 0, rendition: null,
  levelSeen: false, lastSent: 0 };

/** A random (version 4) UUID; crypto.randomUUID exists only in secure contexts. */
function uuid4() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** A new session for the video being loaded (its first frame sends "start"). */
function openSession(videoId, requestedAt = performance.now()) {
  Object.assign(beacon, { session: uuid4(), seq: 0, videoId, requestedAt, started: false, ended: false,
    lastTime: null, watched: 0, stalls: 0, stalled: 0, stallStart: null, switches: 0, lastSent: 0 });
}

/** The body of the next beacon; the increments it carries start again from zero. */
function nextBeacon(event, extra = {}) {
  const position = extra.position !== undefined ? extra.position : video.currentTime || 0;
  const body = { session: beacon.session, seq: beacon.seq, event, position: Math.max(0, position),
    watched: Math.round(beacon.watched * 1000) / 1000, stalls: beacon.stalls,
    stalled: Math.round(beacon.stalled * 1000) / 1000, switches: beacon.switches, rendition: beacon.rendition,
    ...extra };
  beacon.seq += 1;
  Object.assign(beacon, { watched: 0, stalls: 0, stalled: 0, switches: 0, lastSent: performance.now() });
  return body;
}

/** Send a beacon now (fetch, keepalive); a closed session (409) goes on as a new one. */
async function sendBeacon(event, extra = {}) {
  if (!beacon.session || !beacon.videoId) return;
  const videoId = beacon.videoId;
  const body = nextBeacon(event, extra);
  let response;
  try {
    response = await fetch(`${API}/api/video/${videoId}/playback/`, {
      method: "POST", credentials: "include", keepalive: true,
      headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
  } catch {
    return; // lost: the session tolerates it
  }
  const data = await response.json().catch(() => null);
  if (response.status === 200 && data) {
    video.dataset.savedPosition = String(data.position);
    video.dataset.beacons = String(Number(video.dataset.beacons || 0) + 1);
  } else if (response.status === 409 && beacon.videoId === videoId) {
    openSession(videoId);
    beacon.started = true;
    sendBeacon(event === "start" ? "start" : "progress", { ...extra, watched: body.watched });
  } else if (response.status === 401) {
    refreshToken();
  }
}

/** On leaving the page: the last beacon as navigator.sendBeacon (text/plain: no preflight). */
function sendLastBeacon() {
  if (!beacon.session || !beacon.started || beacon.ended) return;
  const body = nextBeacon(video.paused ? "pause" : "progress");
  const blob = new Blob([JSON.stringify(body)], { type: "text/plain" });
  navigator.sendBeacon(`${API}/api/video/${beacon.videoId}/playback/`, blob);
}

function finishStall() {
  if (beacon.stallStart !== null) {
    beacon.stalled += (performance.now() - beacon.stallStart) / 1000;
    beacon.stallStart = null;
  }
}

video.addEventListener("playing", () => {
  finishStall();
  if (!beacon.session) return;
  if (beacon.ended) { // played again after the end: a new session
    openSession(beacon.videoId);
    beacon.requestedAt = null;
  }
  if (!beacon.started) {
    beacon.started = true;
    beacon.lastTime = video.currentTime;
    const ttff = beacon.requestedAt === null ? null : Math.round(performance.now() - beacon.requestedAt);
    sendBeacon("start", { ttff_ms: ttff });
  }
});
video.addEventListener("timeupdate", () => {
  if (!beacon.started || video.seeking) return;
  const now = video.currentTime;
  if (beacon.lastTime !== null) {
    const delta = now - beacon.lastTime;
    if (delta > 0 && delta < 1.5) beacon.watched += delta; // a jump is a seek, not playback
  }
  beacon.lastTime = now;
  if (!video.paused && performance.now() - beacon.lastSent >= BEACON_EVERY_MS) sendBeacon("progress");
});
video.addEventListener("waiting", () => {
  if (beacon.started && !video.seeking && beacon.stallStart === null) {
    beacon.stalls += 1;
    beacon.stallStart = performance.now();
  }
});
video.addEventListener("seeking", () => {
  if (!beacon.started || beacon.lastTime === null) return;
  sendBeacon("seek", { position: beacon.lastTime }); // the range watched ends where the jump left
  beacon.lastTime = null;
});
video.addEventListener("seeked", () => { beacon.lastTime = video.currentTime; });
video.addEventListener("pause", () => {
  if (!beacon.started || video.ended) return;
  finishStall();
  sendBeacon("pause").then(loadContinueWatching);
});
video.addEventListener("ended", () => {
  if (!beacon.started || beacon.ended) return;
  finishStall();
  sendBeacon("end", { position: video.duration || video.currentTime });
  beacon.ended = true;
});
document.addEventListener("visibilitychange", () => { if (document.visibilityState === "hidden") sendLastBeacon(); });
window.addEventListener("pagehide", sendLastBeacon);

/** The rendition playing, and every later switch, for the beacons. */
function noteLevel(label) {
  if (beacon.levelSeen && label !== beacon.rendition) beacon.switches += 1;
  beacon.levelSeen = true;
  beacon.rendition = label;
}

function buildQualityMenu() {
  const options = [new Option("Auto", "-1")];
  hls.levels.forEach((level, index) => {
    const option = new Option(levelLabel(level), String(index));
    option.title = `${level.width}x${level.height}, ${Math.round(level.bitrate / 1000)} kbit/s`;
    options.push(option);
  });
  quality.replaceChildren(...options);
  quality.value = "-1";
  quality.disabled = hls.levels.length < 2;
}

function chooseQuality() {
  if (!hls) return;
  // -1 hands the choice back to hls.js's bandwidth estimate; a level index pins it and
  // switches at once (the buffer is flushed and refilled from that rendition).
  hls.currentLevel = Number(quality.value);
}

function stopPlayback(hide = true) {
  if (hide && current) {
    clearTimeout(current.timer);
    current = null;
    showProcessing(null);
  }
  if (beacon.started && !beacon.ended && !video.paused) sendBeacon("pause");
  beacon.session = null;
  if (video.dataset.videoId) document.dispatchEvent(new CustomEvent("videoflix:stop", { detail: { hls, video } }));
  delete video.dataset.videoId;
  if (hls) {
    hls.destroy();
    hls = null;
  }
  video.removeAttribute("src");
  video.load();
  quality.replaceChildren(new Option("Auto", "-1"));
  quality.disabled = true;
  $("level-status").textContent = "";
  delete $("level-status").dataset.level;
  if (hide) $("player-view").hidden = true;
}

// --- start ------------------------------------------------------------------------------------

$("api-base").textContent = API;
$("login-form").addEventListener("submit", logIn);
$("logout").addEventListener("click", logOut);
quality.addEventListener("change", chooseQuality);
$("search").addEventListener("input", searchSoon);
$("search-form").addEventListener("submit", (event) => { event.preventDefault(); searchSoon(); });
// The extension hook for extras.js (subtitle menu, seek previews): what it needs, read live.
window.videoflixPlayer = {
  video,
  api,
  apiBase: API,
  get hls() { return hls; },
  get videoId() { return video.dataset.videoId || null; },
};
// Already logged in (cookies from an earlier visit)? Then straight to the catalogue.
loadCatalogue().catch((error) => {
  show("login-view");
  say(`The API at ${API} cannot be reached (${error.message}).`, true);
});
