// The overview's trend chart: served hours (bars) and attendance % (line) per day of the month,
// reports filed as a second line; data from the page's "overview-trend" block.
"use strict";
(function () {
  var trend = window.Shouwang.data("overview-trend");
  var element = document.getElementById("trend-chart");
  if (!trend || !element) { return; }
  var days = trend.days.map(function (day) { return day.slice(5); });  // MM-DD
  window.Shouwang.chart(element, {
    animation: false,
    tooltip: { trigger: "axis" },
    legend: { top: 0 },
    grid: { left: 48, right: 48, top: 36, bottom: 28 },
    xAxis: { type: "category", data: days },
    yAxis: [
      { type: "value", name: trend.names.served_hours, minInterval: 1 },
      { type: "value", name: "%", min: 0, max: 100, splitLine: { show: false } }
    ],
    series: [
      { name: trend.names.served_hours, type: "bar", data: trend.served_hours, itemStyle: { color: "#1c5fb8" } },
      { name: trend.names.attendance, type: "line", yAxisIndex: 1, data: trend.attendance, connectNulls: true,
        itemStyle: { color: "#1a7f37" } },
      { name: trend.names.reports, type: "line", data: trend.reports, itemStyle: { color: "#ef6c00" } }
    ]
  });
})();
