// Videoflix player extras: a subtitle menu (hls.js subtitle tracks) and a seek bar with preview
// thumbnails from the video's storyboard (WebVTT cues pointing into JPEG sprites, #xywh=...).
// Reads the player's state from window.videoflixPlayer ({hls, video}, see player.js); adds its
// own controls next to the quality menu, so player.js needs nothing else from this file.
"use strict";

(() => {
  const player = () => window.videoflixPlayer || {};
  const video = () => player().video || document.getElementById("video");
  let cues = [];          // [{start, end, url, x, y, w, h}] of the current video's storyboard
  let loadedFor = null;   // the media URL the extras were set up for

  // --- elements (created here: index.html only loads this script) -----------------------------

  const subtitleLabel = document.createElement("label");
  subtitleLabel.textContent = "Subtitles ";
  const subtitleMenu = document.createElement("select");
  subtitleMenu.id = "subtitles";
  subtitleMenu.disabled = true;
  subtitleMenu.append(new Option("Off", "-1"));
  subtitleLabel.append(subtitleMenu);

  const seekbar = document.createElement("div");
  seekbar.id = "seekbar";
  seekbar.setAttribute("role", "slider");
  seekbar.setAttribute("aria-label", "Seek");
  Object.assign(seekbar.style, { position: "relative", height: "0.75rem", marginTop: "0.5rem",
                                 background: "#343c4a", borderRadius: "0.4rem", cursor: "pointer" });
  const played = document.createElement("div");
  Object.assign(played.style, { height: "100%", width: "0", background: "#2e6bff", borderRadius: "0.4rem" });
  const preview = document.createElement("div");
  preview.id = "storyboard-preview";
  preview.hidden = true;
  Object.assign(preview.style, { position: "absolute", bottom: "1.25rem", border: "2px solid #e8ecf1",
                                 borderRadius: "0.25rem", backgroundRepeat: "no-repeat", pointerEvents: "none" });
  const previewTime = document.createElement("span");
  Object.assign(previewTime.style, { position: "absolute", bottom: "0", left: "0", right: "0", fontSize: "0.75rem",
                                     textAlign: "center", background: "rgba(0,0,0,0.6)" });
  preview.append(previewTime);
  seekbar.append(played, preview);

  function mount() {
    const controls = document.querySelector("#player-view .controls");
    if (controls && !subtitleLabel.isConnected) controls.append(subtitleLabel);
    if (!seekbar.isConnected) video().after(seekbar);
  }

  // --- subtitles ------------------------------------------------------------------------------

  function buildSubtitleMenu() {
    const hls = player().hls;
    const tracks = hls ? hls.subtitleTracks : [];
    const options = [new Option("Off", "-1")];
    tracks.forEach((track, index) => {
      const option = new Option(track.name || track.lang || `Track ${index + 1}`, String(index));
      option.dataset.language = track.lang || "";
      options.push(option);
    });
    subtitleMenu.replaceChildren(...options);
    subtitleMenu.value = hls ? String(hls.subtitleTrack) : "-1";
    subtitleMenu.disabled = tracks.length === 0;
  }

  subtitleMenu.addEventListener("change", () => {
    const hls = player().hls;
    if (!hls) return;
    hls.subtitleDisplay = true;
    hls.subtitleTrack = Number(subtitleMenu.value); // -1: off
  });

  // --- storyboard -----------------------------------------------------------------------------

  function seconds(text) {
    const parts = text.trim().split(":").map(Number);
    return parts.reduce((total, part) => total * 60 + part, 0);
  }

  /** The cues of a storyboard WebVTT; their URLs resolved against the .vtt's own URL. */
  function parseStoryboard(text, base) {
    const out = [];
    for (const block of text.replace(/\r/g, "").split("\n\n")) {
      const lines = block.split("\n").filter(Boolean);
      const timing = lines.findIndex((line) => line.includes("-->"));
      if (timing < 0 || !lines[timing + 1]) continue;
      const [start, end] = lines[timing].split("-->").map((part) => seconds(part.split(" ").filter(Boolean)[0]));
      const [url, fragment] = lines[timing + 1].split("#xywh=");
      const [x, y, w, h] = (fragment || "").split(",").map(Number);
      if ([x, y, w, h].some(Number.isNaN)) continue;
      out.push({ start, end, url: new URL(url, base).href, x, y, w, h });
    }
    return out;
  }

  async function loadStoryboard(mediaUrl) {
    cues = [];
    // The master playlist is <api>/api/video/<id>/master.m3u8: its folder is the detail route.
    const detail = await fetch(new URL("./", mediaUrl), { credentials: "include" });
    if (!detail.ok) return;
    const storyboardUrl = (await detail.json()).storyboard_url;
    if (!storyboardUrl) return;
    const index = await fetch(storyboardUrl, { credentials: "include" });
    if (index.ok && mediaUrl === loadedFor) cues = parseStoryboard(await index.text(), storyboardUrl);
  }

  function fraction(event) {
    const box = seekbar.getBoundingClientRect();
    return Math.min(1, Math.max(0, (event.clientX - box.left) / box.width));
  }

  function showPreview(event) {
    const duration = video().duration;
    if (!cues.length || !Number.isFinite(duration)) {
      preview.hidden = true;
      return;
    }
    const at = fraction(event) * duration;
    const cue = cues.find((c) => at >= c.start && at < c.end) || cues[cues.length - 1];
    Object.assign(preview.style, {
      width: `${cue.w}px`, height: `${cue.h}px`, backgroundImage: `url("${cue.url}")`,
      backgroundPosition: `-${cue.x}px -${cue.y}px`,
      left: `${Math.min(Math.max(0, event.clientX - seekbar.getBoundingClientRect().left - cue.w / 2),
                        seekbar.clientWidth - cue.w)}px`,
    });
    previewTime.textContent = `${Math.floor(at / 60)}:${String(Math.floor(at % 60)).padStart(2, "0")}`;
    preview.dataset.cueStart = String(cue.start);
    preview.hidden = false;
  }

  seekbar.addEventListener("mousemove", showPreview);
  seekbar.addEventListener("mouseleave", () => { preview.hidden = true; });
  seekbar.addEventListener("click", (event) => {
    const v = video();
    if (Number.isFinite(v.duration)) v.currentTime = fraction(event) * v.duration;
  });

  // --- following the player -------------------------------------------------------------------

  function mediaUrl() {
    const hls = player().hls;
    return (hls && hls.url) || video().currentSrc || null;
  }

  function onLoaded() {
    mount();
    buildSubtitleMenu();
    const url = mediaUrl();
    if (url && url !== loadedFor && !url.startsWith("blob:")) {
      loadedFor = url;
      loadStoryboard(url).catch(() => { cues = []; });
    }
    const hls = player().hls;
    if (hls && !hls.videoflixExtras) {
      hls.videoflixExtras = true;
      hls.on(window.Hls.Events.SUBTITLE_TRACKS_UPDATED, buildSubtitleMenu);
      hls.on(window.Hls.Events.SUBTITLE_TRACK_SWITCH, buildSubtitleMenu);
    }
  }

  function onEmptied() {
    cues = [];
    loadedFor = null;
    preview.hidden = true;
    played.style.width = "0";
    subtitleMenu.replaceChildren(new Option("Off", "-1"));
    subtitleMenu.disabled = true;
  }

  video().addEventListener("loadedmetadata", onLoaded);
  video().addEventListener("emptied", onEmptied);
  video().addEventListener("timeupdate", () => {
    const v = video();
    played.style.width = Number.isFinite(v.duration) ? `${(100 * v.currentTime) / v.duration}%` : "0";
  });
})();
