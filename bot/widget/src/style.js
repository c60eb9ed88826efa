// The widget's styles, inside its shadow root so the host page's CSS cannot break it.
// Theme it from the page with CSS variables on #lepton-helpdesk, e.g.
//   #lepton-helpdesk { --lh-primary: #0a7d4f; --lh-font: Georgia, serif; }
export const STYLE = `
:host {
  --lh-primary: #1f3c88;
  --lh-on-primary: #ffffff;
  --lh-surface: #ffffff;
  --lh-bot: #eef1f8;
  --lh-staff: #fff4d6;
  --lh-text: #1d2330;
  --lh-radius: 0.8rem;
  --lh-font: system-ui, -apple-system, "Segoe UI", sans-serif;
  font-family: var(--lh-font);
  color: var(--lh-text);
}
button { font: inherit; cursor: pointer; }
button:focus-visible, input:focus-visible, textarea:focus-visible { outline: 3px solid #ffbf47; outline-offset: 2px; }
.launcher { position: fixed; right: 1.5rem; bottom: 1.5rem; z-index: 2147483000; border: 0;
  border-radius: 2rem; background: var(--lh-primary); color: var(--lh-on-primary);
  padding: 0.9rem 1.3rem; font-size: 1rem; box-shadow: 0 4px 14px rgba(0,0,0,.25); }
.panel { position: fixed; right: 1.5rem; bottom: 5.2rem; z-index: 2147483000; width: 23rem;
  height: min(34rem, calc(100vh - 7rem)); background: var(--lh-surface); border-radius: var(--lh-radius);
  box-shadow: 0 8px 30px rgba(0,0,0,.25); display: flex; flex-direction: column; overflow: hidden; }
.panel[hidden] { display: none; }
header { display: flex; align-items: center; gap: 0.4rem; padding: 0.6rem 0.8rem;
  background: var(--lh-primary); color: var(--lh-on-primary); }
header h2 { flex: 1; margin: 0; font-size: 1rem; }
header button { border: 1px solid rgba(255,255,255,.6); background: transparent; color: inherit;
  border-radius: 0.4rem; padding: 0.2rem 0.5rem; font-size: 0.85rem; }
.log { flex: 1; overflow-y: auto; padding: 0.8rem; display: flex; flex-direction: column; gap: 0.5rem; }
.message { max-width: 85%; padding: 0.5rem 0.75rem; border-radius: var(--lh-radius); overflow-wrap: anywhere; }
.message.user { align-self: flex-end; background: var(--lh-primary); color: var(--lh-on-primary); white-space: pre-wrap; }
.message.bot { align-self: flex-start; background: var(--lh-bot); }
.message.staff { align-self: flex-start; background: var(--lh-staff); }
.message .label { display: block; font-size: 0.75rem; font-weight: 600; margin-bottom: 0.2rem; }
.markdown p { margin: 0 0 0.5rem; } .markdown p:last-child { margin-bottom: 0; }
.markdown ul, .markdown ol { margin: 0.2rem 0 0.5rem; padding-left: 1.2rem; }
.markdown a { color: var(--lh-primary); }
.quick-replies { display: flex; flex-wrap: wrap; gap: 0.4rem; }
.quick-replies button { border: 1px solid var(--lh-primary); background: var(--lh-surface);
  color: var(--lh-primary); border-radius: 1rem; padding: 0.3rem 0.8rem; }
.feedback { display: flex; gap: 0.3rem; align-items: center; font-size: 0.85rem; }
.feedback > button { border: 1px solid #ccd; background: var(--lh-surface); border-radius: 0.4rem; padding: 0.1rem 0.45rem; }
.feedback form { display: flex; flex-direction: column; gap: 0.3rem; width: 100%; }
.feedback textarea { font: inherit; width: 100%; box-sizing: border-box; }
.typing { padding: 0 0.8rem 0.4rem; display: flex; gap: 0.25rem; }
.typing[hidden] { display: none; }
.typing span { width: 0.45rem; height: 0.45rem; border-radius: 50%; background: #99a; animation: blink 1s infinite; }
.typing span:nth-child(2) { animation-delay: 0.2s; } .typing span:nth-child(3) { animation-delay: 0.4s; }
@keyframes blink { 50% { opacity: 0.3; } }
.status { font-size: 0.8rem; color: #a33; padding: 0 0.8rem; min-height: 0; }
.composer { display: flex; border-top: 1px solid #dde; }
.composer input { flex: 1; border: 0; padding: 0.8rem; font: inherit; min-width: 0; }
.composer button { border: 0; background: var(--lh-primary); color: var(--lh-on-primary); padding: 0 1rem; }
@media (max-width: 480px) {
  .panel { right: 0; bottom: 0; width: 100vw; height: 100vh; border-radius: 0; }
  .launcher { right: 1rem; bottom: 1rem; }
}
`;
