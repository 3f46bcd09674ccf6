// The back office's resumable upload page (templates/admin/tus_upload.html): tus-js-client sends
// the file to /api/uploads/ in chunks. Its URL storage (localStorage) remembers each unfinished
// upload by the file's fingerprint (name, type, size, date), so after a reload or a crash the same
// file chosen again continues from the server's offset instead of starting over.
(function () {
  'use strict';
  const form = document.getElementById('tus-form');
  const fileInput = document.getElementById('tus-file');
  const startButton = document.getElementById('tus-start');
  const pauseButton = document.getElementById('tus-pause');
  const progress = document.getElementById('tus-progress');
  const status = document.getElementById('tus-status');
  const resumable = document.getElementById('tus-resumable-list');
  const fields = ['title', 'description', 'category'];
  const SPEED_WINDOW_MS = 5000;

  if (typeof tus === 'undefined' || !tus.isSupported) {
    status.textContent = 'Resumable uploads are not available in this browser: use the single-request form.';
    startButton.disabled = true;
    return;
  }

  let upload = null;
  let videoId = null;
  let samples = [];

  function say(text) { status.textContent = text; }

  function megabytes(bytes) { return (bytes / 1048576).toFixed(1) + ' MB'; }

  function duration(seconds) {
    if (!isFinite(seconds)) return '…';
    const s = Math.round(seconds);
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    return (h ? h + ' h ' : '') + (h || m ? m + ' min ' : '') + (s % 60) + ' s';
  }

  // Speed over the last few seconds (a sliding window), and the time left at that speed.
  function onProgress(sent, total) {
    const now = performance.now();
    samples.push([now, sent]);
    while (samples.length > 2 && now - samples[0][0] > SPEED_WINDOW_MS) samples.shift();
    const [t0, b0] = samples[0];
    const speed = now > t0 ? (sent - b0) / ((now - t0) / 1000) : 0;
    progress.max = total;
    progress.value = sent;
    const percent = total ? Math.floor((sent / total) * 100) : 100;
    form.dataset.percent = String(percent);
    say(`${percent} % — ${megabytes(sent)} of ${megabytes(total)} — ` +
        `${megabytes(speed)}/s — ${duration(speed > 0 ? (total - sent) / speed : Infinity)} left`);
  }

  function detailOf(error) {
    const response = error && error.originalResponse;
    if (!response) return String(error && error.message || error);
    try {
      return JSON.parse(response.getBody()).detail || `HTTP ${response.getStatus()}`;
    } catch (e) {
      return `HTTP ${response.getStatus()}`;
    }
  }

  function metadata(file) {
    const values = { filename: file.name };
    for (const name of fields) values[name] = form.elements[name].value.trim();
    return values;
  }

  function newUpload(file) {
    return new tus.Upload(file, {
      endpoint: form.dataset.endpoint,
      chunkSize: Number(form.dataset.chunkSize),
      retryDelays: [0, 1000, 3000, 5000, 10000, 20000],
      metadata: metadata(file),
      removeFingerprintOnSuccess: true,
      // The API authenticates the back office by its session cookie: send it cross-origin too.
      onBeforeRequest(req) { req.getUnderlyingObject().withCredentials = true; },
      onAfterResponse(req, res) {
        const id = res.getHeader('Video-Id');
        if (id) videoId = id;
      },
      onProgress,
      onSuccess() {
        pauseButton.disabled = true;
        form.dataset.state = 'done';
        form.dataset.videoId = videoId || '';
        status.replaceChildren();
        const link = document.createElement('a');
        link.href = form.dataset.listUrl;
        link.textContent = 'the video list';
        status.append(`Video ${videoId} is uploaded and queued for transcoding: see `, link, '.');
        showResumable();
      },
      onError(error) {
        form.dataset.state = 'error';
        startButton.disabled = false;
        pauseButton.disabled = true;
        say(`The upload failed: ${detailOf(error)}`);
        showResumable();
      },
    });
  }

  // When the chosen file has an unfinished upload, its fields come back from the URL storage.
  async function previousUploadOf(candidate) {
    const previous = await candidate.findPreviousUploads();
    return previous.length ? previous[previous.length - 1] : null;
  }

  fileInput.addEventListener('change', async () => {
    const file = fileInput.files[0];
    if (!file) return;
    const previous = await previousUploadOf(newUpload(file));
    startButton.textContent = previous ? 'Resume upload' : 'Upload';
    if (previous) {
      for (const name of fields) {
        if (previous.metadata[name] !== undefined) form.elements[name].value = previous.metadata[name];
      }
      say(`An unfinished upload of ${file.name} was found: it continues where it stopped.`);
    }
  });

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const file = fileInput.files[0];
    if (!file) return;
    if (file.size > Number(form.dataset.maxSize)) {
      say(`The file is larger than the limit of ${megabytes(Number(form.dataset.maxSize))}.`);
      return;
    }
    upload = newUpload(file);
    const previous = await previousUploadOf(upload);
    if (previous) upload.resumeFromPreviousUpload(previous);
    samples = [];
    startButton.disabled = true;
    pauseButton.disabled = false;
    pauseButton.textContent = 'Pause';
    form.dataset.state = 'uploading';
    say(previous ? 'Resuming…' : 'Starting…');
    upload.start();
  });

  pauseButton.addEventListener('click', () => {
    if (!upload) return;
    if (form.dataset.state === 'uploading') {
      upload.abort();  // the bytes sent so far stay on the server
      form.dataset.state = 'paused';
      pauseButton.textContent = 'Resume';
      say(`Paused at ${form.dataset.percent || 0} %.`);
    } else if (form.dataset.state === 'paused') {
      samples = [];
      form.dataset.state = 'uploading';
      pauseButton.textContent = 'Pause';
      upload.start();
    }
  });

  // Unfinished uploads of this browser, so a reloaded page says what can be continued.
  async function showResumable() {
    const stored = await tus.defaultOptions.urlStorage.findAllUploads();
    const names = stored.map((u) => `${u.metadata.filename || 'a file'} (${megabytes(u.size)})`);
    resumable.classList.toggle('d-none', names.length === 0);
    resumable.textContent = names.length
      ? `Unfinished uploads: ${names.join(', ')}. Choose the same file again to continue.` : '';
  }

  showResumable();
})();
