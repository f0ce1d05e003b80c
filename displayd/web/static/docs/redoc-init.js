// Starts ReDoc on /redoc. A file of its own, not an inline script: the page's CSP allows
// scripts from displayd's origin only. The spec's URL comes from the page (data-spec-url).
"use strict";
(function () {
  // ReDoc 2 draws Redocly's logo from cdn.redoc.ly in its menu's footer, unconditionally.
  // The CSP would block it, but only after the browser tried: an image never gets a source
  // from another origin here, so nothing is even attempted. It fails at once instead, and
  // ReDoc drops a logo that failed to load (the footer keeps its text).
  const foreign = function (value) {
    const url = new URL(String(value), document.baseURI);
    return url.protocol !== "data:" && url.origin !== window.location.origin;
  };
  const refuse = function (img) {
    window.setTimeout(function () { img.dispatchEvent(new Event("error")); }, 0);
  };
  const image = HTMLImageElement.prototype;
  const src = Object.getOwnPropertyDescriptor(image, "src");
  Object.defineProperty(image, "src", {
    configurable: true,
    enumerable: src.enumerable,
    get: src.get,
    set: function (value) {
      if (foreign(value)) {
        refuse(this);
      } else {
        src.set.call(this, value);
      }
    },
  });
  const setAttribute = Element.prototype.setAttribute;
  image.setAttribute = function (name, value) {
    if (String(name).toLowerCase() === "src" && foreign(value)) {
      refuse(this);
    } else {
      setAttribute.call(this, name, value);
    }
  };

  const root = document.getElementById("redoc");
  Redoc.init(root.dataset.specUrl, {}, root);
})();
