// Typesets the maths that pymdownx.arithmatex marks (`$...$` in the docstrings), on every page
// Material shows, including after instant navigation (MkDocs Material's KaTeX recipe).
document$.subscribe(({ body }) => {
  renderMathInElement(body, {
    delimiters: [
      { left: "$$", right: "$$", display: true },
      { left: "$", right: "$", display: false },
      { left: "\\(", right: "\\)", display: false },
      { left: "\\[", right: "\\]", display: true },
    ],
  });
});
