// Safe markdown for chat bubbles: everything is HTML-escaped first, then a small subset of
// markdown (paragraphs, lists, **bold**, *italic*, `code`, links) becomes our own tags.
// Links are kept only for http and https URLs, so `javascript:` can never become a link.

export function escapeHtml(text) {
  return String(text)
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&#39;");
}

function safeUrl(url) {
  return /^https?:\/\/[^\s]+$/i.test(url) ? url : null;
}

function link(label, url) {
  return `<a href="${url}" target="_blank" rel="noopener noreferrer nofollow">${label}</a>`;
}

function inline(escaped) {
  // Input is already escaped; URLs cannot contain a raw quote or angle bracket any more.
  let out = escaped.replace(/\[([^\]]+)\]\(([^)\s]+)\)/g, (whole, label, url) => {
    const safe = safeUrl(url);
    return safe ? link(label, safe) : label;
  });
  out = out.replace(/(^|[\s(])(https?:\/\/[^\s<)]+)/g, (whole, before, url) =>
    `${before}${link(url, url)}`);
  out = out.replace(/`([^`]+)`/g, "<code>$1</code>");
  out = out.replace(/\*\*([^*]+)\*\*/g, "<strong>$1</strong>");
  out = out.replace(/(^|[^*])\*([^*\s][^*]*)\*/g, "$1<em>$2</em>");
  return out;
}

export function renderMarkdown(text) {
  const blocks = escapeHtml(String(text).trim()).split(/\n\s*\n/);
  return blocks.map((block) => {
    const lines = block.split("\n");
    if (lines.every((l) => /^\s*[-*] /.test(l))) {
      return `<ul>${lines.map((l) => `<li>${inline(l.replace(/^\s*[-*] /, ""))}</li>`).join("")}</ul>`;
    }
    if (lines.every((l) => /^\s*\d+[.)] /.test(l))) {
      return `<ol>${lines.map((l) => `<li>${inline(l.replace(/^\s*\d+[.)] /, ""))}</li>`).join("")}</ol>`;
    }
    return `<p>${lines.map(inline).join("<br>")}</p>`;
  }).join("");
}
