// The API docs page (Swagger UI). "Try it out" works with the signed-in browser session: the cookie
// goes along on its own, and writes carry the page's CSRF token, which the API demands of them.
(function () {
  "use strict";

  window.addEventListener("load", () => {
    const root = document.getElementById("swagger-ui-container");
    const csrf = document.querySelector('meta[name="csrf-token"]').content;
    const config = { ...JSON.parse(root.dataset.config || "{}"), url: root.dataset.specUrl, dom_id: "#swagger-ui-container" };
    config.requestInterceptor = (request) => {
      const sameSite = new URL(request.url, window.location.href).origin === window.location.origin;
      // Never hand the token to another site, and reads do not need it.
      if (sameSite && !/^(GET|HEAD|OPTIONS)$/i.test(request.method || "GET")) {
        request.headers["X-CSRFToken"] = csrf;
      }
      return request;
    };
    window.ui = SwaggerUIBundle(config);
  });
})();
