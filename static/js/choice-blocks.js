// Typing in a choice block's fields selects its option (the server reads the chosen option only).
(function () {
  "use strict";
  document.querySelectorAll(".choice-block").forEach(function (block) {
    block.addEventListener("focusin", function (event) {
      var radio = block.querySelector(".choice-label input");
      if (radio && event.target !== radio) { radio.checked = true; }
    });
  });
})();
