// The console's shared script (no inline scripts: the CSP forbids them).
// - Shouwang.data(id): the JSON a page put in <script type="application/json" id="...">.
// - Shouwang.chart(element, option): an ECharts chart that follows the element's size.
// - Shouwang.charts[id]: each chart drawn, by its element's id (for page scripts and browser tests).
// - <select data-autosubmit> submits its form when changed.
// - <form data-confirm="..."> asks before it is sent.
"use strict";
window.Shouwang = (function () {
  var charts = {};
  function data(id) {
    var element = document.getElementById(id);
    return element ? JSON.parse(element.textContent) : null;
  }
  function chart(element, option) {
    if (!element || !window.echarts) { return null; }
    var instance = window.echarts.init(element, null, { renderer: "canvas" });
    instance.setOption(option);
    // A window that leaves the chart no room (narrowed to nothing, or briefly 1x1 while a
    // browser takes a full-page screenshot) is not drawn: ECharts' map throws on a zero-sized
    // chart. The chart keeps its last drawing; the next resize with room redraws it.
    window.addEventListener("resize", function () {
      if (element.clientWidth > 0 && element.clientHeight > 0) { instance.resize(); }
    });
    if (element.id) { charts[element.id] = instance; }
    element.setAttribute("data-drawn", "true");
    return instance;
  }
  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.matches && target.matches("[data-autosubmit]") && target.form) { target.form.submit(); }
  });
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) { event.preventDefault(); }
  });
  return { data: data, chart: chart, charts: charts };
})();
