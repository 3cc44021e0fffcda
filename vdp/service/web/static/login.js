// Sign-in: POST the token once; the gateway answers with an HttpOnly session cookie.
const form = document.getElementById("login-form");
const error = document.getElementById("login-error");

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  error.hidden = true;
  const token = form.token.value.trim();
  if (!token) {
    showError("Enter the token.");
    return;
  }
  const button = form.querySelector("button");
  button.disabled = true;
  try {
    const r = await fetch("/web/login", {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-VDP-CSRF": "1"},
      body: JSON.stringify({token}),
    });
    if (r.ok) {
      form.token.value = "";
      location.reload();
      return;
    }
    const body = await r.json().catch(() => ({}));
    showError(r.status === 401 ? "That token is not valid for this gateway." : (body.detail || `Sign-in failed (HTTP ${r.status}).`));
  } catch (e) {
    showError("The gateway did not answer. Is it running?");
  } finally {
    button.disabled = false;
  }
});

function showError(text) {
  error.textContent = text;
  error.hidden = false;
  form.token.focus();
}
