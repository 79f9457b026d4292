// The live view's script (minichat --watch): reads the server's rows from
// /events (Server-Sent Events, one JSON object each; see
// src/diagram/json.rs) and draws them as a sequence diagram, newest at the
// bottom. Text is only ever set with textContent: whatever a client sends
// is shown, never run.
'use strict';

const MAX_ROWS = 300; // rows kept on the page
const ROW = 48; // px per row
const GUTTER = 110; // px for the time, on the left
const MIN_COLUMN = 280; // px per lifeline, at least
const SVG = 'http://www.w3.org/2000/svg';

const parties = new Map(); // id -> {id, label, addr, open}
let rows = [];
let slots = { open: 0, max: null, holders: [] };
let scheduled = false;

const $ = (id) => document.getElementById(id);

function connect() {
  const source = new EventSource('/events');
  source.onopen = () => {
    // The server starts every stream with the whole state again.
    parties.clear();
    rows = [];
    setStatus('live', 'live');
  };
  source.onerror = () => setStatus('reconnecting…', '');
  source.onmessage = (event) => {
    take(JSON.parse(event.data));
    if (!scheduled) {
      scheduled = true;
      requestAnimationFrame(() => {
        scheduled = false;
        draw();
      });
    }
  };
}

function setStatus(text, cls) {
  const status = $('status');
  status.textContent = text;
  status.className = cls;
}

function take(message) {
  switch (message.type) {
    case 'party':
      parties.set(message.id, message);
      break;
    case 'slots':
      slots = message;
      break;
    case 'skipped':
      push({ kind: 'note', over: [], text: '(more lines than the view can show: some were skipped)' });
      break;
    case 'row':
      if (message.kind !== 'login') push(message); // the header shows the name
      break;
  }
}

function push(row) {
  rows.push(row);
  if (rows.length > MAX_ROWS) rows.splice(0, rows.length - MAX_ROWS);
}

function label(id) {
  if (id === 0) return 'server';
  const party = parties.get(id);
  return party ? party.label : '?';
}

// The lifelines, left to right: the server in the middle, the clients on
// alternate sides in the order they came (as `minichat diagram` does).
function lifelines() {
  const used = new Set();
  for (const row of rows) {
    if (row.who !== undefined) used.add(row.who);
    for (const id of row.over || []) used.add(id);
  }
  for (const [id, party] of parties) if (party.open) used.add(id);
  used.delete(0);
  const ids = [...used].sort((a, b) => a - b);
  const left = ids.filter((_, i) => i % 2 === 0).reverse();
  const right = ids.filter((_, i) => i % 2 === 1);
  return [...left, 0, ...right];
}

function element(name, attributes, text) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

function drawSlots() {
  const slotsNode = $('slots');
  slotsNode.textContent = `${slots.open}/${slots.max ?? '?'} `;
  const small = document.createElement('small');
  small.textContent = 'slots';
  slotsNode.append(small);
  const holders = $('holders');
  holders.replaceChildren(
    ...slots.holders.map((id) => {
      const item = document.createElement('li');
      const party = parties.get(id);
      item.textContent = label(id);
      if (party && party.label === party.addr) item.className = 'anonymous'; // not logged in
      else if (party?.addr) item.title = party.addr;
      return item;
    }),
  );
}

function draw() {
  drawSlots();
  $('empty').hidden = rows.length > 0;
  const order = lifelines();
  const width = Math.max(document.documentElement.clientWidth, GUTTER + order.length * MIN_COLUMN);
  const column = (width - GUTTER) / order.length;
  const x = (id) => GUTTER + column * (order.indexOf(id) + 0.5);
  const atBottom = window.innerHeight + window.scrollY >= document.body.scrollHeight - ROW;

  const heads = $('heads');
  heads.style.width = `${width}px`;
  heads.replaceChildren(
    ...order.map((id) => {
      const head = document.createElement('div');
      const party = parties.get(id);
      head.className = 'head' + (id === 0 ? ' server' : '') + (party && !party.open ? ' ended' : '');
      head.style.left = `${x(id) - column / 2 + 8}px`;
      head.style.width = `${column - 16}px`;
      head.dataset.party = id;
      head.textContent = label(id);
      const small = document.createElement('small');
      const loggedIn = party && party.addr && party.label !== party.addr;
      small.textContent = id === 0 ? `${slots.open}/${slots.max ?? '?'} slots` : loggedIn ? party.addr : '';
      head.append(small);
      return head;
    }),
  );

  const svg = $('diagram');
  const height = rows.length * ROW + ROW / 2;
  svg.setAttribute('width', width);
  svg.setAttribute('height', height);
  svg.replaceChildren(defs());
  // Each lifeline runs down to its end, if it ended on the page.
  const ends = new Map();
  rows.forEach((row, i) => row.kind === 'end' && ends.set(row.who, i));
  for (const id of order) {
    const bottom = ends.has(id) ? ends.get(id) * ROW + ROW * 0.7 : height;
    svg.append(element('line', { class: 'lifeline', x1: x(id), y1: 0, x2: x(id), y2: bottom }));
  }
  rows.forEach((row, i) => svg.append(drawRow(row, i * ROW, x, order)));
  if (atBottom) window.scrollTo(0, document.body.scrollHeight);
}

function drawRow(row, top, x, order) {
  const y = top + ROW * 0.7;
  const group = element('g', { class: `row ${row.kind} ${row.style || ''} ${row.dir || ''}` });
  group.dataset.kind = row.kind;
  if (row.time) group.append(element('text', { class: 'time', x: 6, y }, row.time));
  if (row.kind === 'note') {
    const over = (row.over || []).filter((id) => order.includes(id));
    const xs = (over.length ? over : order).map(x);
    const left = Math.min(...xs) - 120;
    const right = Math.max(...xs) + 120;
    group.dataset.over = (over.length ? over : [0]).map(label).join(',');
    group.append(element('rect', { x: left, y: top + 6, width: right - left, height: ROW - 10, rx: 4 }));
    group.append(element('text', { x: (left + right) / 2, y: top + ROW * 0.62, 'text-anchor': 'middle' }, row.text));
    return group;
  }
  // From the client to the server, or back.
  const toServer = row.kind === 'opened' || (row.kind === 'line' && row.dir === 'in') || (row.kind === 'end' && row.by === 'client');
  const [from, to] = toServer ? [row.who, 0] : [0, row.who];
  group.dataset.from = label(from);
  group.dataset.to = label(to);
  if (row.style === 'error') {
    const [a, b] = [x(from), x(to)].sort((p, q) => p - q);
    group.append(element('rect', { class: 'band', x: a - 20, y: top + 2, width: b - a + 40, height: ROW - 4 }));
  }
  const marker = row.kind === 'end' ? 'cross' : row.kind === 'opened' ? 'open' : 'head';
  const inset = x(to) > x(from) ? -4 : 4;
  group.append(element('line', { class: 'arrow', x1: x(from), y1: y, x2: x(to) + inset, y2: y, 'marker-end': `url(#${marker})` }));
  group.append(element('text', { x: (x(from) + x(to)) / 2, y: y - 9, 'text-anchor': 'middle' }, row.text));
  return group;
}

function defs() {
  const defs = element('defs', {});
  const marker = (id, path, filled) => {
    const m = element('marker', { id, viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 9, markerHeight: 9, orient: 'auto-start-reverse' });
    m.append(element('path', { d: path, fill: filled ? 'context-stroke' : 'none', stroke: 'context-stroke', 'stroke-width': 1.5 }));
    defs.append(m);
  };
  marker('head', 'M0,0 L10,5 L0,10 z', true);
  marker('open', 'M0,0 L10,5 L0,10', false);
  marker('cross', 'M1,1 L9,9 M9,1 L1,9', false);
  return defs;
}

window.addEventListener('resize', draw);
connect();
