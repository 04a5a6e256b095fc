// The window explorer: point at a patch, follow it through every stage (render/explorer.py gives
// the data). Plain JavaScript and canvas, no library; every formula is the model's own:
//   token of patch (y, x) at stage s:     (y >> s, x >> s)                  (PatchMerging halves the map)
//   W-MSA window of token (ty, tx):       (ty / M | 0) * (Wp / M) + (tx / M | 0)   (window_partition)
//   after the cyclic shift by (sh, sw):   ((ty - sh) mod Rh, (tx - sw) mod Rw)    (torch.roll by -shift)
//                                         of the rolled map R = stage.rolled: Hp x Wp when padding comes
//                                         first, H x W when the roll comes first (timm), padded after
//   region of a shifted position:         the model's own region map (create_mask's img_mask), which
//                                         is 3 * (its row's band) + (its column's band)
//   masked key: same SW-MSA window, other region (attn_mask = -100 where the region ids differ)
//   bias of key j for query i:            table[(dy + M - 1) * (2M - 1) + dx + M - 1, head], (dy, dx) = i - j
(function () {
  "use strict";
  // Everything is looked up inside this explorer's own section: a notebook may show several.
  const root = document.currentScript && document.currentScript.closest("section.swintrace-explorer");
  const holder = root && root.querySelector("script.explorer-data");
  if (!holder) return;
  const data = JSON.parse(holder.textContent);
  const words = data.words;
  const $ = (id) => root.querySelector("#" + id);
  const counted = { tokens: "token", windows: "window", blocks: "block", heads: "head", channels: "channel", images: "image", patches: "patch" };
  // English sentences filled with numbers: the singular after 1 and "an" before 8 (words.agree does the same in Python).
  const agree = (text) => (data.lang !== "en" ? text : text
    .replace(/(^|[^\d.,])1 (tokens|windows|blocks|heads|channels|images|patches)\b/g, (match, before, noun) => before + "1 " + counted[noun])
    .replace(/\b([Aa]) (?=8|1[18](?![\d,]))/g, "$1n "));
  const fill = (text, values) => agree(text.replace(/\{(\w+)\}/g, (match, key) => (key in values ? String(values[key]) : match)));
  const bytesOf = (b64) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const REGION_COLORS = ["#cfe3f7", "#f7d9c4", "#d5ecd0", "#eadcf5", "#f6efbf", "#cde9ea", "#f3cfd9", "#dedede", "#e2e8c8"];
  const ACCENT = "#c0392b", WINDOW = "#1f5fae", MASKED = "rgba(60, 64, 72, 0.72)";
  const blocks = data.blocks.map((block) => Object.assign({}, block, {
    codeBytes: bytesOf(block.codes),
    peakValues: new Float32Array(bytesOf(block.peaks).buffer),
    tableValues: new Float32Array(bytesOf(block.table).buffer),
  }));
  const stage0 = data.stages[0];
  const state = { y: data.start[0], x: data.start[1], block: 0, head: 0 };
  let image = null;

  // Where a patch lands in one stage, and in one block's window partition.
  function place(stage, shifted) {
    const s = stage.stage;
    const ty = Math.min(state.y >> s, stage.H - 1), tx = Math.min(state.x >> s, stage.W - 1);
    const [sh, sw] = shifted ? stage.shift : [0, 0];
    const [rh, rw] = stage.rolled;
    const py = (((ty - sh) % rh) + rh) % rh, px = (((tx - sw) % rw) + rw) % rw; // a shift may exceed a small map
    const M = stage.M, across = stage.Wp / M;
    return { ty, tx, py, px, sh, sw, window: ((py / M) | 0) * across + ((px / M) | 0), token: (py % M) * M + (px % M), M, across };
  }
  function original(stage, at, py, px) { // a partition position back to the stage's token (or padding)
    const [rh, rw] = stage.rolled; // positions past the rolled map are padding added after the roll
    const oy = py < rh ? (py + at.sh) % rh : py, ox = px < rw ? (px + at.sw) % rw : px;
    return { oy, ox, padding: oy >= stage.H || ox >= stage.W };
  }
  function region(stage, py, px) {
    return stage.row_bands ? 3 * Number(stage.row_bands[py]) + Number(stage.column_bands[px]) : 0;
  }
  function runs(length, keyOf) { // [start, end, key] of consecutive positions that share a key
    const found = [];
    for (let i = 0; i < length; i++) {
      const key = keyOf(i), last = found[found.length - 1];
      if (last && last[2] === key) last[1] = i + 1; else found.push([i, i + 1, key]);
    }
    return found;
  }
  // How far the patch's token has seen after each block (pictures/reach.py computes the same):
  // backwards from the token through the blocks (its window and, in a shifted block, its region)
  // and the mergings (a merged token's four parents). Reach is exact; rollout carries ½A + ½I of
  // each block's head-averaged attention, rows renormalised over real (unpadded) tokens.
  const plan = data.plan || [];
  const rolloutWeights = {};
  Object.keys(data.rollout || {}).forEach((id) => {
    const codes = bytesOf(data.rollout[id].codes), peaks = new Float32Array(bytesOf(data.rollout[id].peaks).buffer);
    const N = codes.length / peaks.length, weights = new Float64Array(codes.length);
    for (let i = 0; i < codes.length; i++) weights[i] = codes[i] * peaks[(i / N) | 0] / 255;
    rolloutWeights[id] = weights; // windows * N * N, the shifted windows in the model's order
  });
  const windowCache = {};
  function windowsOf(stage, shifted) { // each window: its tokens (indices into the padded map) and region ids
    const key = stage.stage + (shifted ? "s" : "w");
    if (windowCache[key]) return windowCache[key];
    const M = stage.M, Hp = stage.Hp, Wp = stage.Wp, [sh, sw] = shifted ? stage.shift : [0, 0], list = [];
    const [rh, rw] = stage.rolled, back = (i, shift, rolled) => (i < rolled ? (i + shift) % rolled : i);
    for (let top = 0; top < Hp; top += M) for (let left = 0; left < Wp; left += M) {
      const tokens = [], ids = [];
      for (let r = 0; r < M; r++) for (let c = 0; c < M; c++) {
        tokens.push(back(top + r, sh, rh) * Wp + back(left + c, sw, rw)); // shifted[i] = x[(i + shift) mod rolled]
        ids.push(shifted ? region(stage, top + r, left + c) : 0);
      }
      list.push([tokens, ids]);
    }
    return (windowCache[key] = list);
  }
  function throughBlock(stage, shifted, weights, attention) { // weights over the stage's tokens: after -> before
    const Hp = stage.Hp, Wp = stage.Wp, H = stage.H, W = stage.W;
    const flat = new Float64Array(Hp * Wp), real = new Uint8Array(Hp * Wp), before = new Float64Array(Hp * Wp);
    for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) { flat[y * Wp + x] = weights[y * W + x]; real[y * Wp + x] = 1; }
    windowsOf(stage, shifted).forEach(([tokens, ids], w) => {
      const N = tokens.length, row = new Float64Array(N);
      for (let i = 0; i < N; i++) {
        const a = flat[tokens[i]];
        if (!(a > 0)) continue;
        if (!attention) {
          for (let j = 0; j < N; j++) if (ids[j] === ids[i] && real[tokens[j]]) before[tokens[j]] = Math.max(before[tokens[j]], a);
          continue;
        }
        let sum = 0;
        for (let j = 0; j < N; j++) { row[j] = real[tokens[j]] ? 0.5 * attention[(w * N + i) * N + j] + (i === j ? 0.5 : 0) : 0; sum += row[j]; }
        for (let j = 0; j < N; j++) before[tokens[j]] += a * row[j] / Math.max(sum, 1e-30);
      }
    });
    const out = new Float64Array(H * W);
    for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) out[y * W + x] = before[y * Wp + x];
    return out;
  }
  function throughMerge(weights, H, W, mean) { // a merged token's weight back to its real parents
    const Wm = (W + 1) >> 1, out = new Float64Array(H * W);
    for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) {
      const count = Math.min(2, H - 2 * (y >> 1)) * Math.min(2, W - 2 * (x >> 1));
      out[y * W + x] = weights[(y >> 1) * Wm + (x >> 1)] / (mean ? count : 1);
    }
    return out;
  }
  function spreadOf(y, x, withRollout) { // per block: the input patches' weights in the patch's token
    const found = [];
    for (let last = 0; last < plan.length; last++) {
      if (withRollout && !rolloutWeights[plan[last].id]) break;
      let stage = data.stages[plan[last].stage], weights = new Float64Array(stage.H * stage.W);
      weights[Math.min(y >> stage.stage, stage.H - 1) * stage.W + Math.min(x >> stage.stage, stage.W - 1)] = 1;
      for (let back = last; back >= 0; back--) {
        const step = plan[back];
        if (back < last && step.stage !== plan[back + 1].stage) {
          stage = data.stages[step.stage];
          weights = throughMerge(weights, stage.H, stage.W, withRollout);
        }
        weights = throughBlock(data.stages[step.stage], step.shifted, weights, withRollout ? rolloutWeights[step.id] : null);
      }
      found.push(weights);
    }
    return found;
  }
  function drawSpread() {
    const holderElement = $("ex-spread");
    if (!holderElement || !plan.length) return;
    const reached = spreadOf(state.y, state.x, false), rolled = spreadOf(state.y, state.x, true);
    root._spread = { patch: [state.y, state.x], reach: reached.map((w) => Array.from(w, (v) => (v > 0 ? 1 : 0))), rollout: rolled.map((w) => Array.from(w)) };
    const H0 = stage0.H, W0 = stage0.W, total = H0 * W0, cell = Math.max(1, Math.floor(72 / Math.max(H0, W0)));
    holderElement.textContent = "";
    reached.forEach((weights, k) => {
      const figure = document.createElement("figure"), count = weights.reduce((n, v) => n + (v > 0 ? 1 : 0), 0);
      const canvas = document.createElement("canvas"), context = sized(canvas, W0 * cell, 2 * H0 * cell + 3);
      const peak = rolled[k] ? Math.max(...rolled[k], 1e-12) : 1;
      for (let y = 0; y < H0; y++) for (let x = 0; x < W0; x++) {
        if (weights[y * W0 + x] > 0) { context.fillStyle = "#4a90d9"; context.fillRect(x * cell, y * cell, cell, cell); }
        if (rolled[k]) {
          context.fillStyle = `rgba(240, 150, 20, ${(rolled[k][y * W0 + x] / peak).toFixed(3)})`;
          context.fillRect(x * cell, (H0 + y) * cell + 3, cell, cell);
        }
      }
      context.fillStyle = ACCENT;
      context.fillRect(state.x * cell, state.y * cell, Math.max(cell, 2), Math.max(cell, 2));
      const caption = document.createElement("figcaption");
      caption.textContent = fill(words.spread_block, { block: plan[k].id, count, total });
      figure.dataset.block = plan[k].id; figure.dataset.count = count;
      figure.append(canvas, caption);
      holderElement.appendChild(figure);
    });
    root.dataset.reach = reached.map((w) => w.reduce((n, v) => n + (v > 0 ? 1 : 0), 0)).join(" ");
  }
  // W-MSA beside SW-MSA: the two explored blocks of the chosen block's stage, for the same patch and head,
  // each as the image with that block's window over it, its weights, and (SW-MSA) the keys the mask hides.
  function drawPair() {
    const holderElement = $("ex-pair");
    if (!holderElement) return;
    const chosen = blocks[state.block], pair = [false, true].map((shifted) => blocks.find((b) => b.stage === chosen.stage && b.shifted === shifted));
    holderElement.textContent = "";
    holderElement.hidden = !(pair[0] && pair[1]);
    if (holderElement.hidden) return;
    const width = Math.max(140, Math.min(320, (((holderElement.clientWidth || 640) >= 640 ? holderElement.clientWidth / 2 : holderElement.clientWidth) || 300) - 16));
    pair.forEach((block) => {
      const figure = document.createElement("figure"), canvas = document.createElement("canvas"), caption = document.createElement("figcaption");
      const attention = attentionOf(block), scale = width / data.image.width, height = data.image.height * scale;
      const context = sized(canvas, width, height);
      context.fillStyle = "#e8eaef"; context.fillRect(0, 0, width, height);
      if (image && image.complete) { context.globalAlpha = 0.55; context.drawImage(image, 0, 0, width, height); context.globalAlpha = 1; }
      figure.dataset.block = block.id;
      if (attention) {
        const stride = attention.stage.stride * scale, stage = attention.stage, own = region(stage, attention.at.py, attention.at.px);
        attention.keys.forEach((key) => {
          if (key.padding) return;
          const [py, px] = windowKeys(stage, attention.at)[key.j];
          const hidden = block.shifted && region(stage, py, px) !== own;
          context.fillStyle = hidden ? MASKED : `rgba(255, 140, 0, ${(0.15 + 0.8 * key.weight / attention.peak).toFixed(3)})`;
          context.fillRect(key.ox * stride, key.oy * stride, stride, stride);
          context.strokeStyle = WINDOW; context.lineWidth = 1.5;
          context.strokeRect(key.ox * stride + 0.5, key.oy * stride + 0.5, stride - 1, stride - 1);
        });
        const best = attention.keys.reduce((a, b) => (b.weight > a.weight ? b : a));
        figure.dataset.top = best.oy + "," + best.ox;
        figure.dataset.masked = attention.keys.filter((key) => !key.padding && block.shifted && region(stage, ...windowKeys(stage, attention.at)[key.j]) !== own).length;
        caption.textContent = fill(words.pair_caption, { block: block.id, kind: block.shifted ? "SW-MSA" : "W-MSA", head: state.head, y: best.oy, x: best.ox, weight: best.weight.toFixed(3) });
      } else {
        caption.textContent = fill(words.pair_caption_none, { block: block.id });
      }
      const p = data.patch * scale;
      context.strokeStyle = ACCENT; context.lineWidth = 2.5;
      context.strokeRect(state.x * p, state.y * p, Math.max(p, 3), Math.max(p, 3));
      figure.append(canvas, caption);
      holderElement.appendChild(figure);
    });
  }
  // A magnified view around the patch: a patch at least 28 px a side, to point at with a thumb.
  const ZOOM_PATCHES = 7, ZOOM_CELL = 28;
  function drawZoom() {
    const canvas = $("ex-zoom");
    if (!canvas) return;
    const side = ZOOM_PATCHES * ZOOM_CELL, context = sized(canvas, side, side), p = data.patch;
    const y0 = Math.max(0, Math.min(stage0.H - ZOOM_PATCHES, state.y - 3)), x0 = Math.max(0, Math.min(stage0.W - ZOOM_PATCHES, state.x - 3));
    canvas._origin = [y0, x0];
    context.fillStyle = "#e8eaef"; context.fillRect(0, 0, side, side);
    if (image && image.complete) {
      context.imageSmoothingEnabled = false;
      context.drawImage(image, x0 * p * image.naturalWidth / data.image.width, y0 * p * image.naturalHeight / data.image.height,
        ZOOM_PATCHES * p * image.naturalWidth / data.image.width, ZOOM_PATCHES * p * image.naturalHeight / data.image.height, 0, 0, side, side);
    }
    context.strokeStyle = "rgba(255, 255, 255, 0.6)"; context.lineWidth = 1; context.beginPath();
    for (let i = 0; i <= ZOOM_PATCHES; i++) { context.moveTo(i * ZOOM_CELL, 0); context.lineTo(i * ZOOM_CELL, side); context.moveTo(0, i * ZOOM_CELL); context.lineTo(side, i * ZOOM_CELL); }
    context.stroke();
    context.strokeStyle = ACCENT; context.lineWidth = 3;
    context.strokeRect((state.x - x0) * ZOOM_CELL + 1.5, (state.y - y0) * ZOOM_CELL + 1.5, ZOOM_CELL - 3, ZOOM_CELL - 3);
  }
  let hatch = null; // the pattern padding is drawn with
  function hatching(context) {
    if (!hatch) {
      const tile = document.createElement("canvas");
      tile.width = tile.height = 6;
      const pen = tile.getContext("2d");
      pen.fillStyle = "#ffffff"; pen.fillRect(0, 0, 6, 6);
      pen.strokeStyle = "#c4c8d0"; pen.beginPath(); pen.moveTo(0, 6); pen.lineTo(6, 0); pen.stroke();
      hatch = tile;
    }
    return context.createPattern(hatch, "repeat");
  }
  function windowKeys(stage, at) { // the M*M partition positions of the query's window
    const wy = ((at.window / at.across) | 0) * at.M, wx = (at.window % at.across) * at.M, keys = [];
    for (let j = 0; j < at.M * at.M; j++) keys.push([wy + ((j / at.M) | 0), wx + (j % at.M)]);
    return keys;
  }

  function sized(canvas, cssWidth, cssHeight) {
    const ratio = window.devicePixelRatio || 1;
    canvas.style.width = cssWidth + "px"; canvas.style.height = cssHeight + "px";
    canvas.width = Math.round(cssWidth * ratio); canvas.height = Math.round(cssHeight * ratio);
    const context = canvas.getContext("2d");
    context.setTransform(ratio, 0, 0, ratio, 0, 0);
    return context;
  }

  function drawImage(attention) {
    const canvas = $("ex-image");
    const width = Math.min(canvas.parentElement.clientWidth || 320, 448);
    const scale = width / data.image.width, height = data.image.height * scale;
    const context = sized(canvas, width, height);
    canvas._scale = scale;
    context.fillStyle = "#e8eaef"; context.fillRect(0, 0, width, height);
    if (image && image.complete) {
      context.imageSmoothingEnabled = image.naturalWidth * 2 > width; // a tiny input shows its pixels
      context.drawImage(image, 0, 0, width, height);
    }
    const p = data.patch * scale;
    if (p >= 3) { // the patch grid, when it is not a grey blur
      context.strokeStyle = "rgba(255, 255, 255, 0.35)"; context.lineWidth = 1; context.beginPath();
      for (let y = 0; y <= stage0.H; y++) { context.moveTo(0, y * p); context.lineTo(width, y * p); }
      for (let x = 0; x <= stage0.W; x++) { context.moveTo(x * p, 0); context.lineTo(x * p, height); }
      context.stroke();
    }
    if (attention) { // the chosen block's weights over the image, strongest opaque
      const stride = attention.stage.stride * scale;
      attention.keys.forEach((key) => {
        if (key.padding) return;
        context.fillStyle = `rgba(255, 196, 0, ${(0.85 * key.weight / attention.peak).toFixed(3)})`;
        context.fillRect(key.ox * stride, key.oy * stride, stride, stride);
      });
      context.strokeStyle = WINDOW; context.lineWidth = 2;
      attention.keys.forEach((key) => { if (!key.padding) context.strokeRect(key.ox * stride + 1, key.oy * stride + 1, stride - 2, stride - 2); });
    }
    context.strokeStyle = ACCENT; context.lineWidth = 2.5;
    context.strokeRect(state.x * p, state.y * p, Math.max(p, 3), Math.max(p, 3));
  }

  // One stage's map twice: as it is, and after the cyclic shift. Drawn by bands and by the
  // query's window only, so a map of a million tokens costs no more than one of 64.
  function drawStage(stage, canvasLeft, canvasRight, side) {
    const cell = side / Math.max(stage.Hp, stage.Wp);
    const plain = place(stage, false), moved = place(stage, true);
    const shifts = stage.shift[0] || stage.shift[1];
    [[canvasLeft, plain, false], [canvasRight, moved, true]].forEach(([canvas, at, isShifted]) => {
      const width = stage.Wp * cell, height = stage.Hp * cell;
      const context = sized(canvas, width, height);
      context.fillStyle = "#eef0f4"; context.fillRect(0, 0, width, height);
      if (isShifted && shifts && stage.row_bands) {
        const rows = runs(stage.Hp, (y) => stage.row_bands[y]), columns = runs(stage.Wp, (x) => stage.column_bands[x]);
        rows.forEach(([top, bottom, band]) => columns.forEach(([left, right, other]) => {
          context.fillStyle = REGION_COLORS[3 * Number(band) + Number(other)];
          context.fillRect(left * cell, top * cell, (right - left) * cell, (bottom - top) * cell);
        }));
      }
      context.fillStyle = hatching(context); // padding: rows and columns that hold no token of the map
      runs(stage.Hp, (y) => original(stage, at, y, 0).oy >= stage.H).forEach(([top, bottom, padded]) => {
        if (padded) context.fillRect(0, top * cell, width, (bottom - top) * cell);
      });
      runs(stage.Wp, (x) => original(stage, at, 0, x).ox >= stage.W).forEach(([left, right, padded]) => {
        if (padded) context.fillRect(left * cell, 0, (right - left) * cell, height);
      });
      if (isShifted && shifts) { // the keys the mask hides from the query: its window, other regions
        const own = region(stage, at.py, at.px);
        context.fillStyle = MASKED;
        windowKeys(stage, at).forEach(([py, px]) => {
          if (region(stage, py, px) !== own) context.fillRect(px * cell, py * cell, cell, cell);
        });
      }
      if (stage.M * cell >= 3) { // window borders, when they are not a blur
        context.strokeStyle = "rgba(80, 86, 100, 0.55)"; context.lineWidth = 1; context.beginPath();
        for (let y = 0; y <= stage.Hp; y += stage.M) { context.moveTo(0, y * cell); context.lineTo(width, y * cell); }
        for (let x = 0; x <= stage.Wp; x += stage.M) { context.moveTo(x * cell, 0); context.lineTo(x * cell, height); }
        context.stroke();
      }
      const wy = ((at.window / at.across) | 0) * stage.M, wx = (at.window % at.across) * stage.M;
      context.strokeStyle = WINDOW; context.lineWidth = 2.5;
      context.strokeRect(wx * cell + 1, wy * cell + 1, Math.max(stage.M * cell - 2, 2), Math.max(stage.M * cell - 2, 2));
      context.fillStyle = ACCENT; context.fillRect(at.px * cell, at.py * cell, Math.max(cell, 2), Math.max(cell, 2));
    });
    return { plain, moved };
  }

  function stageFacts(stage, plain, moved, element) {
    const shifts = stage.shift[0] || stage.shift[1];
    const parts = [fill(words.token, { y: plain.ty, x: plain.tx }), fill(words.window, { window: plain.window })];
    element.dataset.token = plain.ty + "," + plain.tx;
    element.dataset.window = plain.window;
    if (shifts && stage.row_bands) {
      const keys = windowKeys(stage, moved), own = region(stage, moved.py, moved.px);
      const allowed = keys.filter(([y, x]) => region(stage, y, x) === own).length;
      parts.push(fill(words.shifted_to, { y: moved.py, x: moved.px }), fill(words.shifted_window, { window: moved.window }),
        fill(words.region, { region: own }),
        fill(words.attends, { allowed, total: keys.length, masked: keys.length - allowed }));
      Object.assign(element.dataset, { shifted: moved.py + "," + moved.px, shiftedWindow: moved.window, region: own, masked: keys.length - allowed });
    } else if (shifts) { // a trace without the region map: where the token goes, not what the mask does
      parts.push(fill(words.shifted_to, { y: moved.py, x: moved.px }), fill(words.shifted_window, { window: moved.window }));
      Object.assign(element.dataset, { shifted: moved.py + "," + moved.px, shiftedWindow: moved.window, region: "", masked: "" });
    } else {
      parts.push(words.no_shift);
      Object.assign(element.dataset, { shifted: "", shiftedWindow: "", region: "", masked: "" });
    }
    element.textContent = parts.join(" · ");
  }

  // The chosen block's attention row for the patch's token: every head's weights over its window.
  function attentionOf(block) {
    const stage = data.stages[block.stage], at = place(stage, block.shifted), N = block.N;
    if (at.window >= block.windows_kept) return null;
    const heads = [];
    for (let h = 0; h < block.heads_kept; h++) {
      const row = (at.window * block.heads_kept + h) * N + at.token, peak = block.peakValues[row];
      heads.push(Array.from(block.codeBytes.subarray(row * N, row * N + N), (code) => code * peak / 255));
    }
    const keys = windowKeys(stage, at).map(([py, px], j) => Object.assign(original(stage, at, py, px), { j, weight: heads[state.head] ? heads[state.head][j] : 0 }));
    const peak = Math.max(...keys.map((key) => key.weight), 1e-12);
    return { stage, at, heads, keys, peak };
  }

  function drawHeads(block, attention) {
    const holderElement = $("ex-heads");
    holderElement.textContent = "";
    attention.heads.forEach((weights, h) => {
      const canvas = document.createElement("canvas");
      canvas.title = fill(words.head, {}) + " " + h;
      canvas.className = h === state.head ? "chosen" : "";
      canvas.dataset.head = h;
      const M = attention.at.M, cell = Math.max(3, Math.floor(56 / M));
      const context = sized(canvas, M * cell, M * cell), peak = Math.max(...weights, 1e-12);
      weights.forEach((weight, j) => {
        const t = weight / peak; // white (no weight) to deep orange (the row's peak)
        context.fillStyle = `rgb(255, ${Math.round(255 - 150 * t)}, ${Math.round(255 - 255 * t)})`;
        context.fillRect((j % M) * cell, ((j / M) | 0) * cell, cell, cell);
      });
      context.strokeStyle = ACCENT; context.lineWidth = 1.5;
      context.strokeRect((attention.at.token % M) * cell + 0.5, ((attention.at.token / M) | 0) * cell + 0.5, cell - 1, cell - 1);
      canvas.addEventListener("click", () => { state.head = h; $("ex-head").value = h; update(); });
      holderElement.appendChild(canvas);
    });
  }

  function biasOf(block, attention, j) {
    const M = attention.at.M, span = 2 * M - 1, i = attention.at.token;
    const dy = ((i / M) | 0) - ((j / M) | 0), dx = (i % M) - (j % M);
    const index = (dy + M - 1) * span + dx + M - 1;
    return { dy, dx, index, value: block.tableValues[index * block.heads + state.head] };
  }

  function drawBias(block, attention) {
    const canvas = $("ex-bias"), M = attention.at.M, cell = Math.max(6, Math.floor(168 / M));
    const context = sized(canvas, M * cell, M * cell);
    const values = attention.keys.map((key) => biasOf(block, attention, key.j).value);
    const limit = Math.max(...values.map(Math.abs), 1e-12);
    values.forEach((value, j) => {
      const t = value / limit, fade = Math.round(255 * (1 - Math.abs(t) * 0.8));
      context.fillStyle = t >= 0 ? `rgb(255, ${fade}, ${fade})` : `rgb(${fade}, ${fade}, 255)`;
      context.fillRect((j % M) * cell, ((j / M) | 0) * cell, cell, cell);
      if (cell >= 26) {
        context.fillStyle = "#1d2230"; context.font = `${Math.min(12, cell / 3)}px sans-serif`; context.textAlign = "center";
        context.fillText(value.toFixed(2), (j % M + 0.5) * cell, ((j / M | 0) + 0.6) * cell);
      }
    });
    context.strokeStyle = ACCENT; context.lineWidth = 2;
    context.strokeRect((attention.at.token % M) * cell + 1, ((attention.at.token / M) | 0) * cell + 1, cell - 2, cell - 2);
    canvas._cell = cell;
    $("ex-bias-title").textContent = fill(words.bias_title, { head: state.head });
    describeBias(block, attention, attention.at.token);
  }

  function describeBias(block, attention, j) {
    const bias = biasOf(block, attention, j), key = attention.keys[j];
    $("ex-bias-cell").textContent = fill(words.bias_cell, { y: key.oy, x: key.ox, dy: bias.dy, dx: bias.dx, index: bias.index, value: bias.value.toFixed(4) });
  }

  function update() {
    const block = blocks[state.block];
    const p0 = data.patch;
    const patchText = $("ex-patch");
    patchText.textContent = fill(words.patch, { y: state.y, x: state.x, top: state.y * p0, bottom: Math.min((state.y + 1) * p0, data.image.height) - 1, left: state.x * p0, right: Math.min((state.x + 1) * p0, data.image.width) - 1 });
    patchText.dataset.patch = state.y + "," + state.x;
    data.stages.forEach((stage, s) => {
      const figure = $("ex-stage-" + s), side = Math.min(150, Math.max(96, ((figure.parentElement.clientWidth || 320) - 24) / 2));
      const at = drawStage(stage, figure.querySelector(".ex-plain"), figure.querySelector(".ex-shifted"), side);
      stageFacts(stage, at.plain, at.moved, figure.querySelector(".ex-facts"));
    });
    if ($("ex-goto")) $("ex-goto").href = "#" + block.anchor; // a course page has no steps, nor this link
    const attention = attentionOf(block), top = $("ex-top");
    $("ex-attention").hidden = !attention;
    $("ex-not-stored").hidden = !!attention;
    if (attention) {
      const best = attention.keys.reduce((a, b) => (b.weight > a.weight ? b : a));
      top.textContent = fill(words.top, { y: best.oy, x: best.ox, weight: best.weight.toFixed(4) });
      Object.assign(top.dataset, { top: best.oy + "," + best.ox, weight: best.weight.toFixed(6), window: attention.at.window });
      $("ex-attention-title").textContent = fill(words.attention_title, { block: block.id, head: state.head });
      drawHeads(block, attention);
      drawBias(block, attention);
    } else {
      Object.assign(top.dataset, { top: "", weight: "", window: "" });
      top.textContent = "";
    }
    drawImage(attention);
    exposeAttention(attention);
    drawZoom();
    drawPair();
    drawSpread();
  }

  function exposeAttention(attention) { // the chosen head's row, for tests and the curious (devtools)
    root.dataset.row = attention ? attention.keys.map((key) => key.weight.toFixed(5)).join(" ") : "";
  }

  function chooseBlock(index) {
    state.block = index;
    const block = blocks[index], select = $("ex-head");
    state.head = Math.min(state.head, block.heads_kept - 1);
    select.textContent = "";
    for (let h = 0; h < block.heads_kept; h++) select.add(new Option(String(h), String(h)));
    select.value = String(state.head);
    $("ex-block").value = String(index);
    const kib = block.bytes >= 10240 ? (block.bytes / 1024).toFixed(0) : (block.bytes / 1024).toFixed(1); // never "0 KiB"
    let stored = fill(words.stored, { block: block.id, windows: block.windows_kept, total: block.windows, heads: block.heads_kept, all_heads: block.heads, kib });
    if (block.windows_kept < block.windows || block.heads_kept < block.heads) stored += " " + fill(words.capped, { windows: block.windows_kept, heads: block.heads_kept });
    $("ex-stored").textContent = stored;
    update();
  }

  function patchAt(event) {
    const canvas = $("ex-image"), box = canvas.getBoundingClientRect(), scale = canvas._scale || 1;
    const y = Math.floor((event.clientY - box.top) / scale / data.patch), x = Math.floor((event.clientX - box.left) / scale / data.patch);
    return [Math.max(0, Math.min(stage0.H - 1, y)), Math.max(0, Math.min(stage0.W - 1, x))];
  }
  function moveTo(y, x) {
    if (y === state.y && x === state.x) return;
    state.y = y; state.x = x; update();
  }

  const imageCanvas = $("ex-image");
  let dragging = null; // the canvas a finger (or a pressed mouse) drags the patch on
  imageCanvas.addEventListener("pointermove", (event) => { if (event.pointerType === "mouse" || dragging === imageCanvas) moveTo(...patchAt(event)); });
  imageCanvas.addEventListener("pointerdown", (event) => {
    dragging = imageCanvas;
    if (imageCanvas.setPointerCapture) imageCanvas.setPointerCapture(event.pointerId);
    moveTo(...patchAt(event));
  });
  const zoomCanvas = $("ex-zoom");
  const zoomAt = (event) => {
    const box = zoomCanvas.getBoundingClientRect(), [y0, x0] = zoomCanvas._origin || [0, 0];
    const y = y0 + Math.floor((event.clientY - box.top) / ZOOM_CELL), x = x0 + Math.floor((event.clientX - box.left) / ZOOM_CELL);
    return [Math.max(0, Math.min(stage0.H - 1, y)), Math.max(0, Math.min(stage0.W - 1, x))];
  };
  if (zoomCanvas) {
    zoomCanvas.addEventListener("pointerdown", (event) => {
      dragging = zoomCanvas;
      if (zoomCanvas.setPointerCapture) zoomCanvas.setPointerCapture(event.pointerId);
      moveTo(...zoomAt(event));
    });
    zoomCanvas.addEventListener("pointermove", (event) => { if (dragging === zoomCanvas) moveTo(...zoomAt(event)); });
  }
  window.addEventListener("pointerup", () => { dragging = null; });
  window.addEventListener("pointercancel", () => { dragging = null; });
  imageCanvas.addEventListener("keydown", (event) => {
    const steps = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] }[event.key];
    if (!steps) return;
    event.preventDefault();
    moveTo(Math.max(0, Math.min(stage0.H - 1, state.y + steps[0])), Math.max(0, Math.min(stage0.W - 1, state.x + steps[1])));
  });
  const describeBiasAt = (event) => {
    const block = blocks[state.block], attention = attentionOf(block), canvas = $("ex-bias");
    if (!attention) return;
    const box = canvas.getBoundingClientRect(), M = attention.at.M, cell = canvas._cell;
    const row = Math.floor((event.clientY - box.top) / cell), column = Math.floor((event.clientX - box.left) / cell);
    if (row >= 0 && row < M && column >= 0 && column < M) describeBias(block, attention, row * M + column);
  };
  $("ex-bias").addEventListener("pointermove", describeBiasAt);
  $("ex-bias").addEventListener("pointerdown", describeBiasAt); // a tap on a phone
  $("ex-block").addEventListener("change", (event) => chooseBlock(Number(event.target.value)));
  $("ex-head").addEventListener("change", (event) => { state.head = Number(event.target.value); update(); });
  document.addEventListener("click", (event) => { // a step's "explore" link selects its block
    const link = event.target.closest && event.target.closest("a[data-explore-block]");
    if (!link) return;
    if (!document.getElementById("explorer") || document.getElementById("explorer") !== root) return;
    const index = blocks.findIndex((block) => block.id === link.dataset.exploreBlock);
    if (index >= 0) chooseBlock(index);
  });
  let resizing = null;
  window.addEventListener("resize", () => { clearTimeout(resizing); resizing = setTimeout(update, 120); });
  if (data.image.jpeg) {
    image = new Image();
    image.onload = () => drawImage(attentionOf(blocks[state.block]));
    image.src = "data:image/jpeg;base64," + data.image.jpeg;
  }
  // Start on the first shifted block: the mask has something to show there.
  chooseBlock(Math.max(0, blocks.findIndex((block) => block.shifted)));
  root.dataset.ready = "1";
})();
