// Markdown for untrusted text (answer bodies, staff replies): the one renderer of the product.
// The chat widget uses it for every bot and staff bubble, and the staff console's answer
// preview loads the same code (dist/markdown.js, `window.LeptonMarkdown.renderMarkdown`), so
// what staff preview is what customers see.
//
// Two well-kept libraries, each doing what it is made for: markdown-it parses (raw HTML off,
// bare URLs linked by linkify-it, only http(s) and mailto links), and DOMPurify sanitises what
// markdown-it produced against a short allow-list, so a parser quirk can never become markup.
// The result is a DOM fragment, never an HTML string to assign.
import DOMPurify from "dompurify";
import MarkdownIt from "markdown-it";

const LINK_SCHEMES = /^(?:https?:|mailto:)/i;

const parser = new MarkdownIt("default", { html: false, linkify: true, breaks: true, typographer: false });
// Images and tables are not part of a chat bubble (an image would also load a third party).
parser.disable(["image", "table"]);
parser.validateLink = (url) => LINK_SCHEMES.test(url.trim());
parser.linkify.set({ fuzzyLink: false, fuzzyEmail: true });

const PURIFY = {
  ALLOWED_TAGS: ["p", "br", "strong", "em", "s", "code", "pre", "ul", "ol", "li", "a",
    "blockquote", "h1", "h2", "h3", "h4", "h5", "h6", "hr"],
  ALLOWED_ATTR: ["href", "start"],
  ALLOWED_URI_REGEXP: LINK_SCHEMES,
  ALLOW_DATA_ATTR: false,
  ALLOW_ARIA_ATTR: false,
  RETURN_DOM_FRAGMENT: true,
};

let hooked = false;

function hook() {
  if (hooked) return;
  hooked = true;
  // Every surviving link opens apart from the page and passes it nothing.
  DOMPurify.addHook("afterSanitizeAttributes", (node) => {
    if (node.nodeName !== "A") return;
    if (!LINK_SCHEMES.test(node.getAttribute("href") || "")) node.removeAttribute("href");
    node.setAttribute("target", "_blank");
    node.setAttribute("rel", "noopener noreferrer nofollow");
  });
}

/** The HTML markdown-it makes of ``text``, before sanitising (for tests of the parser). */
export function markdownHtml(text) {
  return parser.render(String(text == null ? "" : text));
}

/** ``text`` rendered as a sanitised DocumentFragment, ready to append. */
export function renderMarkdown(text) {
  hook();
  return DOMPurify.sanitize(markdownHtml(text), PURIFY);
}
