// Optional player features (subtitle menu, seek previews), built on window.videoflixPlayer:
// {video, api(path, options), apiBase, hls (the current Hls instance or null), videoId}, and the
// "videoflix:play" / "videoflix:stop" events on document (detail: {hls, videoId, video}).
// Controls go into #extras-controls.
"use strict";
