/* The trend chart of the public results pages, drawn with the vendored ECharts from the
   table beside it (the table stays: it is the accessible form of the same numbers). Canvas
   renderer and canvas tooltips, so that no inline style is needed (the CSP forbids them). */
(function () {
  "use strict";
  function draw() {
    var box = document.getElementById("trend-chart");
    var table = document.getElementById("trend-table");
    if (!box || !table || typeof window.echarts === "undefined") return;
    var rows = table.querySelectorAll("tbody tr");
    if (!rows.length) return;
    var months = [], totals = [], rates = [];
    rows.forEach(function (tr) {
      months.push(tr.dataset.month);
      totals.push(Number(tr.dataset.total));
      rates.push(tr.dataset.goodRate === "" ? null : Number(tr.dataset.goodRate));
    });
    box.hidden = false;
    var chart = window.echarts.init(box, null, { renderer: "canvas" });
    chart.setOption({
      animation: false,
      tooltip: { trigger: "axis", renderMode: "richText" },
      legend: { data: ["评价数", "好评率"], top: 0 },
      grid: { left: 8, right: 8, top: 32, bottom: 8, containLabel: true },
      xAxis: { type: "category", data: months },
      yAxis: [
        { type: "value", name: "评价数", minInterval: 1 },
        { type: "value", name: "好评率%", max: 100, splitLine: { show: false } }
      ],
      series: [
        { name: "评价数", type: "bar", data: totals, itemStyle: { color: "#0a4fa3" } },
        { name: "好评率", type: "line", yAxisIndex: 1, data: rates, itemStyle: { color: "#17743a" } }
      ]
    });
    window.addEventListener("resize", function () { chart.resize(); });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
