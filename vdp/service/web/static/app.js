// Entry point: the job list (/) or one job (/jobs/<id>), and signing out.
import {api, showFlash} from "/web/static/common.js";
import {showList} from "/web/static/list.js";
import {showJob} from "/web/static/job.js";

document.getElementById("logout").addEventListener("click", async () => {
  await api("/web/logout", {method: "POST"}).catch(() => null);
  location.assign("/");
});

const match = location.pathname.match(/^\/jobs\/([0-9a-f]{32})$/);
(match ? showJob(match[1]) : showList()).catch((e) => showFlash(e.message));
