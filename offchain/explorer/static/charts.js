// gpunet explorer: draws each <div data-plot="name"> from the page's #plot-data JSON with uPlot
// (shipped in static/vendor/). A plot is {"x": [...], "series": {label: [...]}, "time": bool,
// "bars": bool}; bars are per epoch (integer x).
(function () {
  var el = document.getElementById("plot-data");
  if (!el || typeof uPlot === "undefined") return;
  var data = JSON.parse(el.textContent);
  var colors = ["#2458d3", "#1e7a3c", "#b3261e", "#8a5a00"];
  function compact(v) {
    var a = Math.abs(v);
    if (a >= 1e9) return (v / 1e9).toFixed(1) + "G";
    if (a >= 1e6) return (v / 1e6).toFixed(1) + "M";
    if (a >= 1e4) return (v / 1e3).toFixed(0) + "k";
    return +v.toFixed(3) + "";
  }
  document.querySelectorAll("[data-plot]").forEach(function (div) {
    var p = data[div.dataset.plot];
    if (!p || !p.x || p.x.length === 0) {
      div.textContent = "nothing to plot yet";
      div.className += " muted";
      return;
    }
    var names = Object.keys(p.series);
    var series = [{ label: p.time ? "time" : "epoch" }].concat(names.map(function (n, i) {
      var s = { label: n, stroke: colors[i % colors.length], width: 2 };
      if (p.bars) {
        // Side by side: the first two series left and right of the epoch, a third narrow one centred.
        var align = [-1, 1, 0][i % 3], size = [0.35, 0.35, 0.15][i % 3];
        s.paths = uPlot.paths.bars({ size: [size, 60], align: align });
        s.fill = colors[i % colors.length] + "aa";
        s.points = { show: false };
      }
      return s;
    }));
    var x = { time: !!p.time };
    var xAxis = { };
    if (p.bars) {
      x.range = function (u, lo, hi) { return [lo - 0.6, hi + 0.6]; };
      xAxis = { incrs: [1], values: function (u, vals) { return vals.map(function (v) { return "epoch " + v; }); } };
    }
    var opts = {
      width: Math.max(300, div.clientWidth || 560), height: 220, series: series,
      scales: { x: x }, legend: { show: true },
      axes: [xAxis, { size: 60, values: function (u, vals) { return vals.map(compact); } }],
    };
    div.setAttribute("data-drawn", "1");
    new uPlot(opts, [p.x].concat(names.map(function (n) { return p.series[n]; })), div);
  });
})();
