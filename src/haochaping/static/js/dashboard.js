/* 好差评: the dashboard's charts, drawn with the vendored ECharts from the same rows as the
   tables (embedded as JSON in #dashboard-data). The tables are the page's content and its
   accessible source; without this file (or without ECharts) the page is complete. */
(function () {
  "use strict";

  var COLORS = ["#0a4fa3", "#b42318", "#17743a", "#8a5a00", "#5b3fa0", "#0f6e75", "#6e7781",
    "#b4420c", "#2c6e49", "#3d444d"];
  var charts = [];

  /* Text sizes follow the page's font size, so that the large-font mode enlarges the charts. */
  function scale() {
    var px = parseFloat(window.getComputedStyle(document.documentElement).fontSize) || 16;
    return px / 16;
  }

  function textStyle(s) {
    return { fontSize: Math.round(13 * s), color: "#1f2328" };
  }

  function option(spec, s, width) {
    var text = textStyle(s);
    // Canvas tooltips: the CSP refuses the inline styles of ECharts' HTML tooltips.
    var tooltip = { renderMode: "richText", textStyle: text, confine: true };
    if (spec.type === "pie") {
      return {
        color: COLORS,
        textStyle: text,
        tooltip: Object.assign({ trigger: "item" }, tooltip),
        legend: { bottom: 0, type: "scroll", textStyle: text },
        series: [{
          type: "pie",
          radius: ["35%", "65%"],
          center: ["50%", "45%"],
          // On a narrow screen the labels would overlap: the legend and the table say it.
          label: { show: width > 34 * 16 * s, fontSize: text.fontSize, formatter: "{b}\n{d}%" },
          data: spec.categories.map(function (name, i) {
            return { name: name, value: spec.series[0].data[i] };
          })
        }]
      };
    }
    if (spec.type === "trend") {
      // Emerging topics: one line per term, week by week.
      return {
        color: COLORS,
        textStyle: text,
        tooltip: Object.assign({ trigger: "axis" }, tooltip),
        legend: { top: 0, type: "scroll", textStyle: text },
        grid: { left: 8, right: 16 * s, bottom: 8, top: 40 * s, containLabel: true },
        xAxis: { type: "category", data: spec.categories, axisLabel: { fontSize: text.fontSize } },
        yAxis: { type: "value", minInterval: 1, axisLabel: { fontSize: text.fontSize } },
        series: spec.series.map(function (series) {
          return { type: "line", name: series.name, data: series.data, symbolSize: 6 };
        })
      };
    }
    if (spec.type === "line") {
      // The counts as bars on the left axis, the bad ones as a line on the right.
      return {
        color: COLORS,
        textStyle: text,
        tooltip: Object.assign({ trigger: "axis" }, tooltip),
        legend: { top: 0, textStyle: text },
        grid: { left: 8, right: 8, bottom: 8, top: 40 * s, containLabel: true },
        xAxis: { type: "category", data: spec.categories, axisLabel: { fontSize: text.fontSize } },
        yAxis: spec.series.map(function (series, i) {
          return { type: "value", name: series.name, position: i ? "right" : "left",
            axisLabel: { fontSize: text.fontSize }, nameTextStyle: text,
            splitLine: { show: i === 0 } };
        }),
        series: spec.series.map(function (series, i) {
          return { type: i ? "line" : "bar", name: series.name, data: series.data, yAxisIndex: i };
        })
      };
    }
    // Horizontal bars: long names (units, reasons) stay readable on a phone.
    return {
      color: COLORS,
      textStyle: text,
      tooltip: Object.assign({ trigger: "axis", axisPointer: { type: "shadow" } }, tooltip),
      grid: { left: 8, right: 48 * s, bottom: 8, top: 8, containLabel: true },
      xAxis: { type: "value", axisLabel: { fontSize: text.fontSize } },
      yAxis: {
        type: "category",
        inverse: true,
        data: spec.categories,
        axisLabel: { fontSize: text.fontSize, width: 160 * s, overflow: "truncate" }
      },
      series: spec.series.map(function (series) {
        return {
          type: "bar",
          name: series.name,
          data: series.data,
          label: { show: true, position: "right", fontSize: text.fontSize },
          cursor: spec.links ? "pointer" : "default"
        };
      })
    };
  }

  /* No animation for people who asked their system for less motion. */
  function still() {
    return window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;
  }

  function draw() {
    var s = scale();
    charts.forEach(function (entry) {
      entry.el.style.height = Math.max(entry.min, entry.rows * 2.1) * 16 * s + "px";
      entry.chart.resize();
      var opts = option(entry.spec, s, entry.el.clientWidth);
      opts.animation = !still();
      entry.chart.setOption(opts, true);
    });
  }

  function go(href) {
    if (href) window.location.assign(href);
  }

  function initCharts() {
    var data = document.getElementById("dashboard-data");
    if (!data || !window.echarts) return;
    JSON.parse(data.textContent).forEach(function (spec) {
      var el = document.querySelector('[data-chart="' + spec.key + '"]');
      if (!el) return;
      el.hidden = false;
      var chart = window.echarts.init(el, null, { renderer: "canvas" });
      if (spec.links) {
        chart.on("click", function (params) { go(spec.links[params.dataIndex]); });
      }
      var horizontal = spec.type === "bar";
      charts.push({
        el: el, chart: chart, spec: spec,
        rows: horizontal ? spec.categories.length : 0,
        min: spec.type === "line" || spec.type === "trend" ? 18 : 16
      });
    });
    draw();
    window.addEventListener("resize", function () {
      charts.forEach(function (entry) { entry.chart.resize(); });
    });
    // The font switch changes the class of <html> in place: redraw at the new size.
    new MutationObserver(draw).observe(document.documentElement, {
      attributes: true, attributeFilter: ["class"]
    });
  }

  /* A click anywhere on a child's row drills down, as its link does. */
  function initRows() {
    document.addEventListener("click", function (event) {
      if (event.target.closest("a, button, input, select")) return;
      var row = event.target.closest("tr[data-href]");
      if (row) go(row.getAttribute("data-href"));
    });
  }

  /* Editing a date makes the period "custom"; choosing a preset clears the dates' authority. */
  function initFilters() {
    var form = document.getElementById("dashboard-filters");
    if (!form) return;
    var preset = form.querySelector("#f-preset");
    ["#f-since", "#f-until"].forEach(function (id) {
      var input = form.querySelector(id);
      if (input && preset) {
        input.addEventListener("change", function () { preset.value = "custom"; });
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    initCharts();
    initRows();
    initFilters();
  });
})();
