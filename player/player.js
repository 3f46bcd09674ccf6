// Videoflix player: log in, list the ready videos, play one with hls.js, pick a quality, log out.
// The API is on another origin (?api=..., default http://127.0.0.1:8000); every request carries
// the HttpOnly cookies the API sets (credentials: 'include' for fetch, withCredentials for hls.js).
"use strict";

const API = (new URLSearchParams(location.search).get("api") || "http://127.0.0.1:8000").replace(/\/+$/, "");
const REFRESH_EVERY_MS = 20 * 60 * 1000; // the contract: clients refresh every 20 minutes

const $ = (id) => document.getElementById(id);
const video = $("video");
const quality = $("quality");
let hls = null;
let refreshTimer = null;

/** fetch() against the API with the cookies; resolves to {status, body} (body: parsed JSON or null). */
async function api(path, { method = "GET", body } = {}) {
  const response = await fetch(API + path, {
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
  return { status: response.status, body: data };
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
  $("videos").replaceChildren();
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
  const result = await api("/api/video/");
  if (result.status === 401) {
    endSession();
    return;
  }
  if (result.status !== 200 || !Array.isArray(result.body)) {
    say(errorText(result), true);
    return;
  }
  $("session").hidden = false;
  renderCatalogue(result.body);
  show("catalogue-view");
}

function renderCatalogue(videos) {
  const items = videos.map((item) => {
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
    button.addEventListener("click", () => play(item.id));
    const li = document.createElement("li");
    li.append(button);
    return li;
  });
  $("videos").replaceChildren(...items);
  $("empty").hidden = videos.length > 0;
}

// --- playback ---------------------------------------------------------------------------------

/** The rendition label ("720p") of an hls.js level, from its playlist URL, else its height. */
function levelLabel(level) {
  const url = String(level.url || level.uri || "");
  const match = url.match(/\/(\d+p)\/[^/]*\.m3u8/);
  return match ? match[1] : `${level.height}p`;
}

async function play(videoId) {
  stopPlayback();
  const detail = await api(`/api/video/${videoId}/`);
  if (detail.status === 401) return refreshToken().then((ok) => ok && play(videoId));
  if (detail.status !== 200) {
    say(errorText(detail), true);
    return;
  }
  const source = detail.body.master_url || `${API}/api/video/${videoId}/master.m3u8`;
  $("now-playing").textContent = detail.body.title;
  $("player-view").hidden = false;
  video.dataset.videoId = String(videoId);
  say("");

  if (window.Hls && Hls.isSupported()) {
    startHls(source);
  } else if (video.canPlayType("application/vnd.apple.mpegurl")) {
    video.src = source; // Safari plays HLS natively (no quality menu: the browser decides)
    video.play().catch(() => {});
  } else {
    say("This browser can play neither HLS nor Media Source Extensions.", true);
  }
}

function startHls(source) {
  let retriedAuth = false;
  hls = new Hls({
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
    stopPlayback(false);
  });
  hls.loadSource(source);
  hls.attachMedia(video);
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
// Already logged in (cookies from an earlier visit)? Then straight to the catalogue.
loadCatalogue().catch((error) => {
  show("login-view");
  say(`The API at ${API} cannot be reached (${error.message}).`, true);
});
