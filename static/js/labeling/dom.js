const SVGNS = "http://www.w3.org/2000/svg";

export const $ = (id) => document.getElementById(id);

export function el(name, attrs) {
  const node = document.createElementNS(SVGNS, name);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  return node;
}

export function toast(message) {
  if (window.loupeToast) window.loupeToast(message);
}

/** The page's CSRF token (base.html puts it on <body> for htmx); every write sends it as X-CSRFToken. */
export function csrfToken() {
  try {
    return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"] || "";
  } catch (e) {
    return "";
  }
}
