// A tiny subset of htmx, served locally because no CDN is reachable: forms with hx-post or hx-get are sent
// with fetch (header HX-Request: true) and the answer replaces the innerHTML (or outerHTML, per hx-swap)
// of the element named by hx-target. Without JavaScript the same forms post normally.
document.addEventListener("submit", async (event) => {
  const form = event.target.closest("form[hx-post], form[hx-get]");
  if (!form) return;
  event.preventDefault();
  const post = form.hasAttribute("hx-post");
  const params = new URLSearchParams(new FormData(form, event.submitter));
  let url = form.getAttribute(post ? "hx-post" : "hx-get");
  if (!post && params.toString()) url += (url.includes("?") ? "&" : "?") + params;
  for (const b of form.querySelectorAll("button")) b.disabled = true;
  const response = await fetch(url, {
    method: post ? "POST" : "GET",
    headers: { "HX-Request": "true", "Content-Type": "application/x-www-form-urlencoded" },
    body: post ? params : undefined,
  });
  const html = await response.text();
  const target = document.querySelector(form.getAttribute("hx-target") || "body");
  if (form.getAttribute("hx-swap") === "outerHTML") target.outerHTML = html;
  else target.innerHTML = html;
});
