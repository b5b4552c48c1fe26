"""The monthly report (月度通报) and the window service stars (窗口服务之星), issue 12."""
