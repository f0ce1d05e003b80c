// Starts Swagger UI on /docs. A file of its own, not an inline script: the page's CSP allows
// scripts from displayd's origin only. The spec's URL comes from the page (data-spec-url).
"use strict";
(function () {
  const root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.specUrl,
    domNode: root,
    deepLinking: true,
    layout: "BaseLayout",
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
    showExtensions: true,
    showCommonExtensions: true,
    // The default sends the spec to validator.swagger.io for a badge: nothing leaves the LAN.
    validatorUrl: null,
  });
})();
