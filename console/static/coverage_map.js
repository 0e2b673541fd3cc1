// The coverage map: the grids' stored boundaries (GeoJSON from the page's data block) registered as
// an ECharts map, coloured by coverage %, with the figures in the tooltip; a click on a grid opens
// its participation page. No tile server: nothing is fetched but the page's own scripts.
"use strict";
(function () {
  var element = document.getElementById("coverage-map");
  var data = window.Shouwang.data("coverage-map-data");
  if (!element || !data || !window.echarts) { return; }
  var echarts = window.echarts;
  var labels = data.labels;
  var byName = {};
  data.grids.forEach(function (grid) { byName[grid.name] = grid; });
  echarts.registerMap("shouwang-grids", data.geojson);

  function tooltip(params) {
    var grid = byName[params.name];
    if (!grid) { return ""; }
    var encode = echarts.format.encodeHTML;  // grid names are anyone's text: never HTML
    var coverage = grid.coverage_pct === null ? labels.no_data : grid.coverage_pct + "%";
    return "<strong>" + encode(grid.grid_name) + "</strong><br>" +
      encode(labels.coverage) + ": " + encode(coverage) + "<br>" +
      encode(labels.served) + ": " + grid.served_hours + "<br>" +
      encode(labels.expected) + ": " + grid.expected_hours;
  }

  var chart = window.Shouwang.chart(element, {
    tooltip: { trigger: "item", formatter: tooltip },
    visualMap: {
      min: 0, max: 100, left: "left", bottom: 10, calculable: true,
      formatter: function (value) { return Math.round(value) + "%"; },
      inRange: { color: ["#d32f2f", "#ef6c00", "#f9a825", "#2e7d32"] }
    },
    series: [{
      type: "map",
      map: "shouwang-grids",
      roam: true,
      selectedMode: false,
      itemStyle: { areaColor: "#cfd8dc", borderColor: "#ffffff", borderWidth: 1 },
      emphasis: { label: { show: false }, itemStyle: { borderColor: "#1f2328", borderWidth: 2 } },
      label: { show: false },
      data: data.grids.map(function (grid) { return { name: grid.name, value: grid.coverage_pct }; })
    }]
  });
  if (!chart) { return; }
  chart.on("click", function (params) {
    var grid = byName[params.name];
    if (!grid) { return; }
    // Leave once ECharts has finished with this click, and with the chart gone: a mouse event it
    // still had queued would otherwise reach a half-torn-down map while the next page loads.
    window.setTimeout(function () {
      chart.dispose();
      window.location.assign(grid.url);
    }, 0);
  });
})();
