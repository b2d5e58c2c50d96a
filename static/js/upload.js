// Upload page: drop files or whole folders, send each file with its own progress bar, then start
// the import job and let its HTMX status partial poll itself.
(function () {
  "use strict";
  const PARALLEL = 3;

  function csrfToken(form) {
    return form.querySelector("input[name=csrf_token]").value;
  }

  // Walk dropped directory entries so a dropped folder keeps its relative paths.
  async function entriesToFiles(entry, prefix, out) {
    if (entry.isFile) {
      const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
      out.push({ file, path: prefix + file.name });
    } else if (entry.isDirectory) {
      const reader = entry.createReader();
      let batch;
      do {
        batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
        for (const child of batch) await entriesToFiles(child, prefix + entry.name + "/", out);
      } while (batch.length);
    }
  }

  function row(list, name) {
    const li = document.createElement("li");
    li.className = "file";
    li.innerHTML = '<span class="name"></span><span class="progress thin"><span></span></span><span class="state">waiting</span>';
    li.querySelector(".name").textContent = name;
    list.appendChild(li);
    return li;
  }

  function sendOne(url, form, item, li) {
    return new Promise((resolve) => {
      const data = new FormData();
      data.append("files", item.file, item.file.name);
      data.append("paths", item.path);
      data.append("folder", form.elements.folder.value);
      const xhr = new XMLHttpRequest();
      xhr.open("POST", url);
      xhr.setRequestHeader("X-CSRFToken", csrfToken(form));
      xhr.setRequestHeader("Accept", "application/json");
      xhr.upload.onprogress = (e) => {
        if (e.lengthComputable) li.querySelector(".progress span").style.width = `${(100 * e.loaded) / e.total}%`;
      };
      xhr.onload = () => {
        let result = null;
        try { result = JSON.parse(xhr.responseText); } catch (_) { /* not JSON: handled below */ }
        const file = result && result.files && result.files[0];
        if (xhr.status === 200 && file && file.stored) {
          li.classList.add("ok");
          li.querySelector(".state").textContent = "uploaded";
        } else {
          li.classList.add("failed");
          const reason = file ? file.reason : (result && result.error ? result.error.message : `HTTP ${xhr.status}`);
          li.querySelector(".state").textContent = `failed: ${reason}`;
        }
        li.querySelector(".progress span").style.width = "100%";
        resolve();
      };
      xhr.onerror = () => {
        li.classList.add("failed");
        li.querySelector(".state").textContent = "failed: network error";
        resolve();
      };
      xhr.send(data);
    });
  }

  async function upload(form, items) {
    if (!items.length) return;
    const panel = document.getElementById("upload-progress");
    const list = document.getElementById("upload-files");
    const bar = document.getElementById("upload-bar");
    panel.hidden = false;
    const summary = document.createElement("span");
    summary.id = "upload-summary";
    say("", "Uploading ").appendChild(summary);
    list.innerHTML = "";
    document.getElementById("import-job").innerHTML = "";  // the previous batch's job is not this one's
    const begin = new FormData();
    begin.append("split", form.elements.split.value);
    const response = await fetch(form.dataset.beginUrl, { method: "POST", body: begin, headers: { "X-CSRFToken": csrfToken(form), Accept: "application/json" } });
    if (!response.ok) {
      window.loupeToast && window.loupeToast(`Could not start the upload (HTTP ${response.status})`);
      return;
    }
    const batch = await response.json();
    const rows = items.map((item) => row(list, item.path));
    let next = 0;
    let finished = 0;
    async function lane() {
      while (next < items.length) {
        const i = next++;
        await sendOne(batch.files_url, form, items[i], rows[i]);
        finished++;
        bar.style.width = `${(100 * finished) / items.length}%`;
        summary.textContent = `${finished} of ${items.length}`;
      }
    }
    await Promise.all(Array.from({ length: Math.min(PARALLEL, items.length) }, lane));
    const done = await fetch(batch.finish_url, { method: "POST", headers: { "X-CSRFToken": csrfToken(form), "HX-Request": "true" } });
    const target = document.getElementById("import-job");
    target.innerHTML = await done.text();
    if (!done.ok) {
      say("failed", `Not imported: ${target.textContent.trim() || `HTTP ${done.status}`}`);
      return;
    }
    say("", "Importing…");
    htmx.process(target);
    importEnded(target);
  }

  // The heading says where the batch is; once its import job has ended, how it ended.
  function say(state, text) {
    const heading = document.getElementById("upload-state");
    heading.textContent = text;
    heading.className = state;
    return heading;
  }
  function importEnded(target) {
    const job = target.querySelector(".job");
    const status = job && job.dataset.jobStatus;
    if (!status || status === "queued" || status === "running") return;
    if (status === "finished") {
      say("done", target.querySelector("#job-done")?.textContent.trim() || "Done");
    } else {
      const message = target.querySelector("#job-message")?.textContent.trim() || "";
      say("failed", `The import ${status === "cancelled" ? "was cancelled" : "failed"}: ${message}`);
    }
  }
  // The job partial polls itself (outerHTML swaps); each swap may be its last.
  document.addEventListener("htmx:afterSettle", () => {
    const target = document.getElementById("import-job");
    if (target) importEnded(target);
  });

  document.addEventListener("DOMContentLoaded", () => {
    const form = document.getElementById("upload-form");
    if (!form) return;
    const zone = document.getElementById("dropzone");
    const pick = (input) => input.addEventListener("change", () => {
      upload(form, [...input.files].map((file) => ({ file, path: file.webkitRelativePath || file.name })));
      input.value = "";
    });
    pick(document.getElementById("file-input"));
    pick(document.getElementById("folder-input"));
    ["dragenter", "dragover"].forEach((type) => zone.addEventListener(type, (e) => { e.preventDefault(); zone.classList.add("over"); }));
    ["dragleave", "drop"].forEach((type) => zone.addEventListener(type, () => zone.classList.remove("over")));
    zone.addEventListener("drop", async (event) => {
      event.preventDefault();
      const entries = [...event.dataTransfer.items].map((i) => i.webkitGetAsEntry && i.webkitGetAsEntry()).filter(Boolean);
      const items = [];
      if (entries.length) {
        for (const entry of entries) await entriesToFiles(entry, "", items);
      } else {
        for (const file of event.dataTransfer.files) items.push({ file, path: file.name });
      }
      upload(form, items);
    });
  });
})();
