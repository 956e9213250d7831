// A print button on any console page: <button data-print>. (Inline handlers are not allowed by the CSP.)
document.addEventListener("click", (ev) => {
  const button = ev.target.closest && ev.target.closest("[data-print]");
  if (button) { ev.preventDefault(); window.print(); }
});
